//go:build interop

package interop

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// directSIPpPort is where a SIPp UAS listens when the gateway reaches it
// straight (gatewayDirectConfig): behind a registrarFront that takes its
// place at the port the gateway's upstream names.
const directSIPpPort = 5088

// registrarFront stands at the gateway's upstream port in front of a SIPp
// UAS. The gateway relays a browser's calls only once the core accepted its
// REGISTER (passthrough mode), and SIPp takes no REGISTER: the front
// answers each 200 itself, and the gateway's OPTIONS keepalive too, and
// relays everything else unchanged, both ways,
// but for SIPp's own address in what SIPp sends, which it rewrites to its
// own (same length). So the gateway sees SIPp at the front's port, as the
// wire checks at the gateway's SIP port expect, and every message SIPp
// drops or repeats is still one the gateway sent or gets.
type registrarFront struct {
	conn net.PacketConn
	sipp *net.UDPAddr
	// sippAddr and frontAddr are the host:port texts swapped in SIPp's
	// messages.
	sippAddr, frontAddr []byte
}

// startRegistrarFront listens at 127.0.0.1:port for a SIPp at sippPort.
func startRegistrarFront(t *testing.T, port, sippPort int) {
	t.Helper()
	if len(strconv.Itoa(port)) != len(strconv.Itoa(sippPort)) {
		t.Fatalf("registrar front: ports %d and %d differ in length; rewriting would break Content-Length", port, sippPort)
	}
	conn, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("registrar front: %v", err)
	}
	f := &registrarFront{conn: conn, sipp: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sippPort},
		sippAddr: []byte(fmt.Sprintf("127.0.0.1:%d", sippPort)), frontAddr: []byte(fmt.Sprintf("127.0.0.1:%d", port))}
	done := make(chan struct{})
	go func() { defer close(done); f.serve(t) }()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
}

// serve relays until the socket closes; only it touches gateway.
func (f *registrarFront) serve(t *testing.T) {
	var gateway net.Addr
	buf := make([]byte, 65535)
	for {
		n, src, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		msg := buf[:n]
		if u, ok := src.(*net.UDPAddr); ok && u.Port == f.sipp.Port && u.IP.Equal(f.sipp.IP) {
			if gateway != nil {
				_, _ = f.conn.WriteTo(bytes.ReplaceAll(msg, f.sippAddr, f.frontAddr), gateway)
			}
			continue
		}
		gateway = src
		if bytes.HasPrefix(msg, []byte("REGISTER ")) {
			f.answerRegister(t, msg, src)
			continue
		}
		if bytes.HasPrefix(msg, []byte("OPTIONS sip:127.0.0.1:")) {
			// The gateway's keepalive, an OPTIONS to the upstream itself
			// (no user part): a core answers it; SIPp's scenarios know
			// nothing of it.
			f.answerOptions(t, msg, src)
			continue
		}
		_, _ = f.conn.WriteTo(msg, f.sipp)
	}
}

// answerOptions answers the gateway's keepalive 200.
func (f *registrarFront) answerOptions(t *testing.T, raw []byte, to net.Addr) {
	m, err := sip.ParseMessage(bytes.Clone(raw))
	if err != nil {
		t.Logf("registrar front: unparsable OPTIONS: %v", err)
		return
	}
	if req, ok := m.(*sip.Request); ok {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		_, _ = f.conn.WriteTo([]byte(res.String()), to)
	}
}

// answerRegister grants what a REGISTER asks: 200 with its Contacts and
// their expiry (none for Expires: 0 or *), as a registrar would.
func (f *registrarFront) answerRegister(t *testing.T, raw []byte, to net.Addr) {
	m, err := sip.ParseMessage(bytes.Clone(raw))
	if err != nil {
		t.Logf("registrar front: unparsable REGISTER: %v", err)
		return
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", "front")
	}
	for _, h := range req.GetHeaders("Contact") {
		ct, ok := h.(*sip.ContactHeader)
		if !ok || ct.Address.Wildcard {
			continue
		}
		expires := 3600
		if v, ok := ct.Params.Get("expires"); ok {
			expires, _ = strconv.Atoi(v)
		} else if e := req.GetHeader("Expires"); e != nil {
			expires, _ = strconv.Atoi(e.Value())
		}
		if expires == 0 {
			continue
		}
		out := ct.Clone()
		out.Params = out.Params.Clone()
		out.Params.Remove("expires")
		out.Params.Add("expires", strconv.Itoa(expires))
		res.AppendHeader(out)
	}
	_, _ = f.conn.WriteTo([]byte(res.String()), to)
}
