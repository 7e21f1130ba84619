//go:build interop

package interop

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/siptap"
)

// TestHEPToSngrep: the gateway exports HEP v3 (hep.address) to sngrep
// listening for it (-L), which captures nothing else (its own capture is on
// an interface that carries nothing). JsSIP in Chromium calls the SIPp echo
// through Kamailio. The HEP stream, captured on its way to sngrep and read
// back here, holds the call's browser leg (INVITE, 200, ACK, BYE, 200 over
// TCP between the browser's real address and the WebSocket port) and its
// core leg (between the gateway and Kamailio, UDP or TCP as it went), each
// under its own Call-ID; and sngrep counts as many dialogs as the stream
// has Call-IDs.
func TestHEPToSngrep(t *testing.T) {
	if !onPath("sngrep") {
		t.Fatal("sngrep is not installed (bash .ci/run installs it)")
	}
	const hepAddr = "127.0.0.1:9060"
	// sngrep captures from a device even while it listens for HEP, and its
	// filter will not install then: it gets one that carries nothing, a
	// veth whose peer is down (no IPv6 on it, so no browser gathers there).
	for _, args := range [][]string{
		{"ip", "link", "add", "hepcap0", "type", "veth", "peer", "name", "hepcap1"},
		{"sysctl", "-qw", "net.ipv6.conf.hepcap0.disable_ipv6=1"},
		{"ip", "link", "set", "hepcap0", "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "hepcap0").Run() })
	sng := startProc(t, "sngrep", procOptions{}, "sngrep", "-N", "-d", "hepcap0", "-L", "udp:"+hepAddr)
	if err := waitBound("udp", hepAddr, startTimeout); err != nil {
		t.Fatalf("sngrep: %v\n%s", err, sng.log())
	}
	wire := startCaptureOf(t, "hep", "udp port 9060")
	e := newEnvWith(t, "udp", "hep:\n  address: "+hepAddr+"\n  id: 2001\n")
	r := startBrowser(t, e.browserOptions("jssip", "jssip.html", "call-out", "alice", "sip:echo@imsgate.test")).waitResult(t, browserBudget)
	e.requireOK(t, r, "confirmed", "ended")
	e.requireBrowserAudio(t, r)
	time.Sleep(1500 * time.Millisecond) // the BYE's 200 on both legs; sngrep prints its count each second
	wire.stop(t)
	sng.stop(t)

	counts := regexp.MustCompile(`Dialog count: (\d+)`).FindAllStringSubmatch(sng.log(), -1)
	if len(counts) == 0 {
		t.Fatalf("sngrep printed no dialog count:\n%s", sng.log())
	}
	sngrepDialogs, _ := strconv.Atoi(counts[len(counts)-1][1])

	out, err := exec.Command("tshark", "-r", wire.file, "-n", "-T", "fields", "-e", "udp.payload").Output()
	if err != nil {
		t.Fatalf("tshark on the HEP capture: %v", err)
	}
	type dialog struct {
		msgs      []string
		web, core bool
	}
	dialogs := map[string]*dialog{}
	for _, line := range strings.Fields(string(out)) {
		raw, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		p, err := decodeHEP(raw)
		if err != nil {
			t.Fatalf("a HEP packet that does not decode: %v (%x)", err, raw)
		}
		if p.protoType != 1 {
			continue // the calls' quality reports
		}
		h, ok := siptap.ParseHead(p.payload)
		if !ok {
			t.Fatalf("HEP SIP payload that is not SIP: %q", p.payload)
		}
		d := dialogs[h.CallID]
		if d == nil {
			d = &dialog{}
			dialogs[h.CallID] = d
		}
		what := h.Method
		if h.Status != 0 {
			what = fmt.Sprintf("%d %s", h.Status, h.Method)
		}
		d.msgs = append(d.msgs, what)
		// The web leg: TCP to or from the WebSocket port; the core leg: to
		// or from Kamailio's port, over UDP, or TCP for requests too large
		// for UDP (the INVITE with its SDP and credentials).
		if p.ipProto == 6 && (p.src.Port() == 8080 || p.dst.Port() == 8080) {
			d.web = true
		}
		if p.src.Port() == 5060 || p.dst.Port() == 5060 {
			d.core = true
		}
	}
	var web, core bool
	for id, d := range dialogs {
		t.Logf("dialog %s: web %v, core %v: %v", id, d.web, d.core, d.msgs)
		if slices.Contains(d.msgs, "INVITE") && slices.Contains(d.msgs, "200 INVITE") && slices.Contains(d.msgs, "ACK") &&
			slices.Contains(d.msgs, "BYE") && slices.Contains(d.msgs, "200 BYE") {
			web = web || (d.web && !d.core)
			core = core || (d.core && !d.web)
		}
	}
	t.Logf("sngrep: %d dialogs; the HEP stream: %d Call-IDs", sngrepDialogs, len(dialogs))
	if !web || !core {
		t.Fatalf("the HEP stream lacks a whole call on each leg (web %v, core %v)", web, core)
	}
	if sngrepDialogs != len(dialogs) {
		t.Fatalf("sngrep counts %d dialogs, the HEP stream has %d Call-IDs", sngrepDialogs, len(dialogs))
	}
}

// hepPacket is what the test reads of a HEP v3 packet.
type hepPacket struct {
	ipProto, protoType uint8
	src, dst           netip.AddrPort
	payload            []byte
}

// decodeHEP reads a HEP v3 packet's addresses, protocols and payload.
func decodeHEP(b []byte) (hepPacket, error) {
	var p hepPacket
	if len(b) < 6 || string(b[:4]) != "HEP3" || int(binary.BigEndian.Uint16(b[4:])) != len(b) {
		return p, errors.New("not HEP3 of its stated length")
	}
	var srcIP, dstIP netip.Addr
	var srcPort, dstPort uint16
	for rest := b[6:]; len(rest) > 0; {
		if len(rest) < 6 {
			return p, errors.New("truncated chunk")
		}
		typ, n := binary.BigEndian.Uint16(rest[2:]), int(binary.BigEndian.Uint16(rest[4:]))
		if n < 6 || n > len(rest) {
			return p, fmt.Errorf("chunk %d of length %d", typ, n)
		}
		v := rest[6:n]
		switch typ {
		case 2:
			p.ipProto = v[0]
		case 3, 5:
			srcIP, _ = netip.AddrFromSlice(v)
		case 4, 6:
			dstIP, _ = netip.AddrFromSlice(v)
		case 7:
			srcPort = binary.BigEndian.Uint16(v)
		case 8:
			dstPort = binary.BigEndian.Uint16(v)
		case 11:
			p.protoType = v[0]
		case 15:
			p.payload = v
		}
		rest = rest[n:]
	}
	p.src, p.dst = netip.AddrPortFrom(srcIP, srcPort), netip.AddrPortFrom(dstIP, dstPort)
	return p, nil
}
