//go:build interop

package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The /netcheck/ page in Chromium against a gateway with STUN, TURN (REST
// credentials in token mode) and ICE-TCP: every path works; then, with
// UDP to the media port dropped by nftables (the TURN relay's own packets
// let through, as a firewall at the browser's end would), UDP straight
// fails, ICE-TCP and TURN work and a call would use ICE-TCP; without a
// token the TURN lines are not tried and say why.

const (
	netcheckSTUNAddr = "127.0.0.1:3479" // stun.listen (TURN has 3478)
	netcheckTable    = "imsgate_netcheck"
)

// netcheckRow is one line of the page (window.netcheck.results).
type netcheckRow struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Status string   `json:"status"` // works, failed, not tried
	Text   string   `json:"text"`
	Detail string   `json:"detail"`
	RTTMs  *float64 `json:"rttMs"`
	Pair   *struct {
		Local  iceCandidate `json:"local"`
		Remote iceCandidate `json:"remote"`
	} `json:"pair"`
}

// netcheckResult is browser/netcheck.js's result line.
type netcheckResult struct {
	OK         bool     `json:"ok"`
	Error      string   `json:"error"`
	Ms         int      `json:"ms"`
	Text       string   `json:"text"`
	Screenshot string   `json:"screenshot"`
	Console    []string `json:"console"`
	Netcheck   struct {
		Done         bool          `json:"done"`
		Results      []netcheckRow `json:"results"`
		CallPath     string        `json:"callPath"`
		CallPathText string        `json:"callPathText"`
	} `json:"netcheck"`
}

func (r netcheckResult) row(id string) netcheckRow {
	for _, x := range r.Netcheck.Results {
		if x.ID == id {
			return x
		}
	}
	return netcheckRow{ID: id, Status: "missing"}
}

func TestNetcheckPage(t *testing.T) {
	for _, tool := range []string{"node", "nft", "/usr/bin/chromium"} {
		if _, err := os.Stat(tool); err != nil && !onPath(tool) {
			t.Fatalf("%s is not installed (bash .ci/run installs it)", tool)
		}
	}
	udpOnly := fmt.Sprintf("  webrtc_port: %d\n", webrtcPort)
	cfg := gatewayConfig("udp")
	if !strings.Contains(cfg, udpOnly) {
		t.Fatalf("gatewayConfig has no %q to extend", udpOnly)
	}
	certFile, keyFile, spki := writeTestCert(t, artifactDir(t))
	cfg = strings.Replace(cfg, udpOnly, udpOnly+fmt.Sprintf("  webrtc_tcp_port: %d\n", webrtcTCPPort), 1) + fmt.Sprintf(`stun:
  listen: %s
turn:
  listen: %s
  tls_listen: %s
  tls_cert: %s
  tls_key: %s
  secret: interop-turn-rest-secret
  credential_ttl: 10m
  allowed_peers: [127.0.0.0/8]
  relay_ports: "%d-%d"
`, netcheckSTUNAddr, turnAddr, turnTLSAddr, certFile, keyFile, turnRelayFirst, turnRelayLast) + tokenConfig(t)
	gw := startGateway(t, cfg, repoRoot())
	if err := waitBound("tcp", fmt.Sprintf("127.0.0.1:%d", webrtcTCPPort), startTimeout); err != nil {
		t.Fatalf("imsgate webrtc_tcp_port: %v\n%s", err, gw.log())
	}
	tok := signToken(t, tokenSecret, newClaims("user-alice", 5*time.Minute))
	page := "http://" + gatewayWSAddr + "/netcheck/?" + url.Values{"token": {tok}}.Encode()
	ended := 0 // probes the gateway logged as ended so far

	t.Run("all_paths", func(t *testing.T) {
		r := runNetcheck(t, page, spki)
		for _, id := range []string{"stun", "udp", "tcp", "turn-udp", "turn-tcp", "turn-tls"} {
			requireRow(t, r, id, "works")
		}
		requirePath(t, r, "udp", "host", "udp", "", webrtcPort)
		requirePath(t, r, "tcp", "host|prflx", "tcp", "", webrtcTCPPort)
		requirePath(t, r, "turn-udp", "relay", "udp", "udp", webrtcPort)
		requirePath(t, r, "turn-tcp", "relay", "udp", "tcp", webrtcPort)
		requirePath(t, r, "turn-tls", "relay", "udp", "tls", webrtcPort)
		if !strings.Contains(r.row("stun").Text, "your public address is 127.0.0.1:") {
			t.Errorf("STUN line %q does not name the address", r.row("stun").Text)
		}
		if r.Netcheck.CallPath != "udp" || !strings.Contains(r.Text, "A call from here would use: UDP straight to the gateway.") {
			t.Errorf("call path %q (%q); want udp", r.Netcheck.CallPath, r.Netcheck.CallPathText)
		}
		ended = requireProbesEnded(t, gw, ended, 6, map[string]bool{})
	})

	t.Run("udp_blocked", func(t *testing.T) {
		dropped := dropUDPExceptRelay(t)
		r := runNetcheck(t, page, spki)
		requireRow(t, r, "udp", "failed")
		for _, id := range []string{"stun", "tcp", "turn-udp", "turn-tcp", "turn-tls"} {
			requireRow(t, r, id, "works")
		}
		requirePath(t, r, "tcp", "host|prflx", "tcp", "", webrtcTCPPort)
		if !strings.Contains(r.row("udp").Text, "no connection within 6 s") {
			t.Errorf("UDP line %q does not say why", r.row("udp").Text)
		}
		n := dropped()
		t.Logf("nftables dropped %d UDP packets to port %d; call path %q", n, webrtcPort, r.Netcheck.CallPath)
		if n == 0 {
			t.Errorf("nothing was dropped: the browser sent no UDP to port %d", webrtcPort)
		}
		if r.Netcheck.CallPath != "tcp" && r.Netcheck.CallPath != "turn-tcp" {
			t.Errorf("call path %q (%q); want tcp (or turn-tcp)", r.Netcheck.CallPath, r.Netcheck.CallPathText)
		}
		ended = requireProbesEnded(t, gw, ended, 6, map[string]bool{"udp": true})
	})

	t.Run("no_token", func(t *testing.T) {
		r := runNetcheck(t, "http://"+gatewayWSAddr+"/netcheck/", spki)
		requireRow(t, r, "udp", "works")
		requireRow(t, r, "tcp", "works")
		for _, id := range []string{"stun", "turn-udp", "turn-tcp", "turn-tls"} {
			requireRow(t, r, id, "not tried")
			if !strings.Contains(r.row(id).Text, "401") || !strings.Contains(r.row(id).Text, "?token=") {
				t.Errorf("%s line %q does not say a token is missing", id, r.row(id).Text)
			}
		}
		if r.Netcheck.CallPath != "udp" {
			t.Errorf("call path %q; want udp", r.Netcheck.CallPath)
		}
		requireProbesEnded(t, gw, ended, 3, map[string]bool{})
	})
}

// runNetcheck opens page in Chromium and returns what it showed; the
// screenshot goes to the test's artifacts as netcheck.png.
func runNetcheck(t *testing.T, page, spki string) netcheckResult {
	t.Helper()
	arg, _ := json.Marshal(map[string]any{
		"pageURL": page, "artifactsDir": artifactDir(t), "screenshot": "netcheck.png",
		"chromiumArgs": []string{"--ignore-certificate-errors-spki-list=" + spki}, "timeoutMs": 90000,
	})
	last := runPageScript(t, "netcheck-browser", "netcheck.js", arg, 150*time.Second)
	var r netcheckResult
	if err := json.Unmarshal([]byte(last), &r); err != nil || !r.OK || !r.Netcheck.Done {
		t.Fatalf("netcheck page: %v %s\nconsole: %s\n%s", err, r.Error, strings.Join(r.Console, "\n"), last)
	}
	t.Logf("the page finished in %d ms:\n%s", r.Ms, r.Text)
	for _, x := range r.Netcheck.Results {
		rtt := "-"
		if x.RTTMs != nil {
			rtt = strconv.FormatFloat(*x.RTTMs, 'f', 2, 64) + " ms"
		}
		t.Logf("%-9s %-9s rtt %-9s %s | %s", x.ID, x.Status, rtt, x.Text, x.Detail)
	}
	return r
}

func requireRow(t *testing.T, r netcheckResult, id, status string) {
	t.Helper()
	if x := r.row(id); x.Status != status {
		t.Errorf("%s: %s %q, want %s", id, x.Status, x.Text, status)
	}
}

// requirePath: the row's selected pair is a local candidate of a type typ
// matches (Chromium's active ICE-TCP candidate shows as prflx once
// connected) over relayProtocol ("" when not relayed) to the gateway's port
// over protocol.
func requirePath(t *testing.T, r netcheckResult, id, typ, protocol, relayProtocol string, port int) {
	t.Helper()
	x := r.row(id)
	if x.Pair == nil {
		t.Errorf("%s: no selected pair", id)
		return
	}
	l, rm := x.Pair.Local, x.Pair.Remote
	if !regexp.MustCompile(`^(`+typ+`)$`).MatchString(l.CandidateType) || l.RelayProtocol != relayProtocol || rm.Protocol != protocol || rm.Port != port {
		t.Errorf("%s: pair local %s, remote %s; want local %s relayed over %q, remote %s port %d", id, l, rm, typ, relayProtocol, protocol, port)
	}
	if x.RTTMs == nil {
		t.Errorf("%s: no round-trip time", id)
	}
}

// requireProbesEnded waits until the gateway logged want more probes
// ended than before, each ended by the page (its DELETE: closed; over
// ICE-TCP its connection may close first: browser_gone), none at MaxAge,
// each connected but those of the paths in failed; it returns the new
// total.
func requireProbesEnded(t *testing.T, gw *proc, before, want int, failed map[string]bool) int {
	t.Helper()
	var lines []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = gatewayLogged(gw, "netcheck probe ended")
		if len(lines) >= before+want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(lines) != before+want {
		t.Fatalf("the gateway logged %d probes ended, want %d", len(lines)-before, want)
	}
	for _, f := range lines[before:] {
		path, _ := f["path"].(string)
		t.Logf("gateway: probe %v path %s connected %v over %v from %v, setup %v, lived %v, %v",
			f["probe"], path, f["connected"], f["transport"], f["browser_addr"], f["setup"], f["dur"], f["reason"])
		if f["reason"] != "closed" && !(f["reason"] == "browser_gone" && f["transport"] == "tcp") {
			t.Errorf("probe %v ended %v over %v, want closed by the page's DELETE", f["probe"], f["reason"], f["transport"])
		}
		if f["connected"] != !failed[path] {
			t.Errorf("probe %v (path %s) connected %v", f["probe"], path, f["connected"])
		}
	}
	return len(lines)
}

// dropUDPExceptRelay makes nftables drop UDP to the gateway's WebRTC port
// unless it comes from the TURN relay's ports: the browser's own UDP is
// blocked, as by a firewall on its side, while the relay still reaches
// the gateway. Cleanup deletes the table; dropped reads the counter.
func dropUDPExceptRelay(t *testing.T) (dropped func() int) {
	t.Helper()
	return nftDrop(t, netcheckTable, fmt.Sprintf("udp dport %d udp sport != %d-%d counter drop", webrtcPort, turnRelayFirst, turnRelayLast))
}

// runPageScript runs one of browser/'s single-page drivers (netcheck.js,
// statuspage.js) with its JSON options and returns the last line it
// printed, its result.
func runPageScript(t *testing.T, name, script string, arg []byte, timeout time.Duration) string {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, name, procOptions{dir: interopDir(), stdout: pw},
		"node", filepath.Join(interopDir(), "browser", script), string(arg))
	pw.Close()
	lines := make(chan string, 1)
	go func() {
		defer pr.Close()
		last := ""
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64*1024), 8<<20)
		for sc.Scan() {
			last = sc.Text()
		}
		lines <- last
	}()
	select {
	case last := <-lines:
		return last
	case <-time.After(timeout):
		p.stop(t)
		t.Fatalf("%s printed no result; see %s", script, p.logPath)
	}
	return ""
}
