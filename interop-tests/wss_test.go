//go:build interop

package interop

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/testcert"
)

// gatewayWSSAddr is where the gateway serves WSS beside WS on gatewayWSAddr.
const gatewayWSSAddr = "127.0.0.1:8443"

// TestWSSAndWSAtOnce: one gateway serves ws.listen and ws.tls_listen at
// the same time; JsSIP in Chromium registers and calls the SIPp echo over
// WSS while another JsSIP page does the same over plain WS, and both hear
// audio (getStats) while tshark sees RTP at SIPp, and the gateway's log
// shows the two calls at the same time. The certificate is made
// here; Chromium trusts exactly its key (--ignore-certificate-errors-spki-list).
func TestWSSAndWSAtOnce(t *testing.T) {
	certFile, keyFile, spki := writeTestCert(t, artifactDir(t))
	ws := "ws:\n  listen: " + gatewayWSAddr + "\n"
	wss := ws + fmt.Sprintf("  tls_listen: %s\n  tls_cert: %s\n  tls_key: %s\n", gatewayWSSAddr, certFile, keyFile)
	cfg := gatewayConfig("udp")
	if !strings.Contains(cfg, ws) {
		t.Fatalf("gatewayConfig has no %q to extend", ws)
	}
	e := newEnvWithGateway(t, strings.Replace(cfg, ws, wss, 1))
	if err := waitBound("tcp", gatewayWSSAddr, startTimeout); err != nil {
		t.Fatalf("imsgate wss: %v\n%s", err, e.gateway.log())
	}

	secure := e.browserOptions("jssip", "jssip.html", "call-out", "alice", "sip:echo@imsgate.test")
	secure.Name, secure.WSURL, secure.TalkMs = "browser-wss", "wss://"+gatewayWSSAddr+"/", 8000
	secure.ChromiumArgs = []string{"--ignore-certificate-errors-spki-list=" + spki}
	plain := e.browserOptions("jssip", "jssip.html", "call-out", "bob", "sip:echo@imsgate.test")
	plain.Name, plain.TalkMs = "browser-ws", 8000
	bs, bp := startBrowser(t, secure), startBrowser(t, plain)
	results := map[string]browserResult{"wss": bs.waitResult(t, browserBudget), "ws": bp.waitResult(t, browserBudget)}
	for name, r := range results {
		t.Run(name, func(t *testing.T) {
			e.requireOK(t, r, "registered", "confirmed", "ended")
			if !r.sawSIP("< SIP/2.0 200 OK (REGISTER)") || !r.sawSIP("> BYE") {
				e.failf(t, r, "want a 200 for REGISTER and a BYE on the %s WebSocket", name)
			}
			e.requireBrowserAudio(t, r)
		})
	}
	e.requireSIPpRTP(t, results["wss"], echoMediaPort)
	// The gateway's log: a call talked on a WSS and on a WS connection, at
	// the same time.
	calls := talkedCalls(t, e.gateway.log())
	wssCall, okS := calls["WSS"]
	wsCall, okP := calls["WS"]
	if !okS || !okP {
		e.failf(t, results["wss"], "gateway log lacks a hung-up call per transport: %v", calls)
	}
	from, to := later(wssCall[0], wsCall[0]), earlier(wssCall[1], wsCall[1])
	t.Logf("WSS call %s–%s, WS call %s–%s: %s together", wssCall[0].Format(time.TimeOnly), wssCall[1].Format(time.TimeOnly),
		wsCall[0].Format(time.TimeOnly), wsCall[1].Format(time.TimeOnly), to.Sub(from).Round(time.Millisecond))
	if !from.Before(to) {
		e.failf(t, results["wss"], "the WSS and WS calls did not overlap")
	}
}

// talkedCalls reads the gateway's console log: for each transport, the
// [start, end] of a call hung up after talking on a connection of it.
func talkedCalls(t *testing.T, log string) map[string][2]time.Time {
	t.Helper()
	transport := map[string]string{} // flow → WS or WSS
	calls := map[string][2]time.Time{}
	for _, line := range strings.Split(log, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 6 {
			continue
		}
		var v struct{ Flow, Transport, Reason, Dur string }
		if json.Unmarshal([]byte(f[len(f)-1]), &v) != nil {
			continue
		}
		switch f[len(f)-2] {
		case "ws connection open":
			transport[v.Flow] = v.Transport
		case "call ended":
			end, err1 := time.Parse(time.RFC3339Nano, f[0])
			dur, err2 := time.ParseDuration(v.Dur)
			if v.Reason == "hangup" && err1 == nil && err2 == nil && transport[v.Flow] != "" {
				calls[transport[v.Flow]] = [2]time.Time{end.Add(-dur), end}
			}
		}
	}
	return calls
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// newEnvWithGateway is newEnvWith for a gateway config of its own: Kamailio,
// the SIPp echo, the capture and the pages.
func newEnvWithGateway(t *testing.T, gatewayYAML string) *env {
	t.Helper()
	for _, tool := range []string{"kamailio", "sipp", "tshark", "node", "/usr/bin/chromium"} {
		if _, err := os.Stat(tool); err != nil && !onPath(tool) {
			t.Fatalf("%s is not installed (bash .ci/run installs it)", tool)
		}
	}
	e := &env{}
	e.kamailio = startKamailio(t)
	startSIPpUAS(t, "sipp-echo", "uas_echo.xml", echoUASPort, echoMediaPort, true)
	e.capture = startCapture(t)
	e.gateway = startGateway(t, gatewayYAML, repoRoot())
	e.pageBase = startStaticServer(t)
	return e
}

// writeTestCert makes a self-signed ECDSA certificate for 127.0.0.1 in dir
// and returns its files and the base64 SHA-256 of its public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile, spki string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "wss-cert.pem"), filepath.Join(dir, "wss-key.pem")
	cert := testcert.Write(t, certFile, keyFile, "imsgate interop")
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return certFile, keyFile, base64.StdEncoding.EncodeToString(sum[:])
}
