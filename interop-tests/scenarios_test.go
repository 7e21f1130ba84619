//go:build interop

package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// libraries are the browser SIP stacks every scenario runs with.
var libraries = []struct{ name, page string }{
	{"jssip", "jssip.html"},
	{"sipjs", "sipjs.html"},
}

const (
	talkMs        = 4000
	browserBudget = 90 * time.Second
)

// env is one test's set of real peers around a fresh gateway.
type env struct {
	kamailio *proc
	gateway  *proc
	capture  *capture
	pageBase string
}

func newEnv(t *testing.T, transport string) *env {
	t.Helper()
	return newEnvWith(t, transport, "")
}

// newEnvWith is newEnv with more gateway configuration (YAML appended),
// and optionally another scenario for the echo UAS.
func newEnvWith(t *testing.T, transport, config string, echoScenario ...string) *env {
	t.Helper()
	echo := "uas_echo.xml"
	if len(echoScenario) > 0 {
		echo = echoScenario[0]
	}
	for _, tool := range []string{"kamailio", "sipp", "tshark", "node", "/usr/bin/chromium"} {
		if _, err := os.Stat(tool); err != nil && !onPath(tool) {
			t.Fatalf("%s is not installed (bash .ci/run installs it)", tool)
		}
	}
	if _, err := os.Stat(filepath.Join(interopDir(), "node_modules", "playwright-core")); err != nil {
		t.Fatalf("npm packages missing: run npm ci --prefix interop-tests")
	}
	e := &env{}
	e.kamailio = startKamailio(t)
	startSIPpUAS(t, "sipp-echo", echo, echoUASPort, echoMediaPort, true)
	startSIPpUAS(t, "sipp-ring", "uas_ring.xml", ringUASPort, ringMediaPort, false)
	e.capture = startCapture(t)
	e.gateway = startGateway(t, gatewayConfig(transport)+config, repoRoot())
	e.pageBase = startStaticServer(t)
	return e
}

func (e *env) browserOptions(lib, page, scenario, user, target string) browserOptions {
	return browserOptions{
		Lib:      lib,
		Scenario: scenario,
		PageURL:  e.pageBase + "/browser/" + page,
		WSURL:    "ws://" + gatewayWSAddr + "/",
		URI:      "sip:" + user + "@imsgate.test",
		Password: "secret",
		Target:   target,
		TalkMs:   talkMs,
	}
}

// failf ends the test with the browser's view and the logs of the gateway
// and Kamailio, which is what the gateway's authors need to see.
func (e *env) failf(t *testing.T, r browserResult, format string, args ...any) {
	t.Helper()
	kamailio := "(not running)"
	if e.kamailio != nil {
		kamailio = tail(e.kamailio.log(), 30)
	}
	t.Fatalf("%s\n--- browser:\n%s\n--- imsgate log (tail):\n%s\n--- kamailio log (tail):\n%s\n(all logs: %s)",
		fmt.Sprintf(format, args...), r.summary(), tail(e.gateway.log(), 60), kamailio, artifactDir(t))
}

func (e *env) requireOK(t *testing.T, r browserResult, events ...string) {
	t.Helper()
	if !r.OK {
		e.failf(t, r, "browser scenario failed")
	}
	for _, name := range events {
		if !r.hasEvent(name) {
			e.failf(t, r, "page never reached %q", name)
		}
	}
}

// requireBrowserAudio: audio left the browser and real sound came back.
func (e *env) requireBrowserAudio(t *testing.T, r browserResult) {
	t.Helper()
	s := r.Stats
	t.Logf("browser getStats: inbound packets %d, audioLevel %.3f, totalAudioEnergy %.4f; outbound packets %d",
		s.Inbound.PacketsReceived, s.Inbound.AudioLevel, s.Inbound.TotalAudioEnergy, s.Outbound.PacketsSent)
	if s.Outbound.PacketsSent == 0 {
		e.failf(t, r, "browser sent no RTP")
	}
	if s.Inbound.PacketsReceived == 0 {
		e.failf(t, r, "browser received no RTP")
	}
	if s.Inbound.TotalAudioEnergy <= 0 {
		e.failf(t, r, "browser received packets but no audio energy (silence)")
	}
}

// requireSIPpRTP: the capture saw RTP reach SIPp's media port and leave it.
func (e *env) requireSIPpRTP(t *testing.T, r browserResult, port int) {
	t.Helper()
	e.capture.stop(t)
	in := e.capture.count(t, fmt.Sprintf("udp.dstport == %d", port))
	out := e.capture.count(t, fmt.Sprintf("udp.srcport == %d", port))
	t.Logf("tshark at SIPp media port %d: %d packets in, %d out", port, in, out)
	if in == 0 {
		e.failf(t, r, "no RTP reached SIPp's media port %d", port)
	}
	if out == 0 {
		e.failf(t, r, "SIPp sent no RTP from port %d", port)
	}
}

func requireSIPpPassed(t *testing.T, e *env, r browserResult, uac *proc) {
	t.Helper()
	if err := uac.wait(30 * time.Second); err != nil {
		e.failf(t, r, "SIPp caller failed: %v\n--- sipp log (tail):\n%s", err, tail(uac.log(), 25))
	}
}

func TestRegister(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newEnv(t, "udp")
			b := startBrowser(t, e.browserOptions(lib.name, lib.page, "register", "alice", ""))
			r := b.waitResult(t, browserBudget)
			e.requireOK(t, r, "registered", "unregistered")
			// Digest passes through: the browser itself sees the challenge.
			i401, i200 := indexSIP(r.SIP, "< SIP/2.0 401"), indexSIP(r.SIP, "< SIP/2.0 200")
			if i401 < 0 || i200 < 0 || i401 > i200 {
				e.failf(t, r, "want 401 then 200 on the WebSocket")
			}
		})
	}
}

func TestRegisterWrongPassword(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newEnv(t, "udp")
			opts := e.browserOptions(lib.name, lib.page, "register-rejected", "bob", "")
			opts.Password = "wrong"
			b := startBrowser(t, opts)
			r := b.waitResult(t, browserBudget)
			if r.hasEvent("registered") {
				e.failf(t, r, "registered with a wrong password")
			}
			if !r.hasEvent("registration_failed") {
				e.failf(t, r, "no registration failure reported")
			}
		})
	}
}

func TestCallOutToEcho(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		for _, lib := range libraries {
			t.Run(transport+"/"+lib.name, func(t *testing.T) {
				e := newEnv(t, transport)
				b := startBrowser(t, e.browserOptions(lib.name, lib.page, "call-out", "alice", "sip:echo@imsgate.test"))
				r := b.waitResult(t, browserBudget)
				e.requireOK(t, r, "registered", "confirmed", "ended")
				// Kamailio challenges the INVITE; the browser answers it itself.
				if i407, i200 := indexSIP(r.SIP, "< SIP/2.0 407"), indexSIP(r.SIP, "< SIP/2.0 200 OK (INVITE)"); i407 < 0 || i200 < i407 {
					e.failf(t, r, "want 407 then 200 for the INVITE on the WebSocket")
				}
				if !r.sawSIP("> BYE") {
					e.failf(t, r, "browser hung up but sent no BYE")
				}
				e.requireBrowserAudio(t, r)
				e.requireSIPpRTP(t, r, echoMediaPort)
			})
		}
	}
}

// TestCallOutUnknownUser: Kamailio's 404 for a user with no binding comes
// back to the browser as the call's final answer.
func TestCallOutUnknownUser(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newEnv(t, "udp")
			b := startBrowser(t, e.browserOptions(lib.name, lib.page, "call-out-rejected", "alice", "sip:nobody@imsgate.test"))
			r := b.waitResult(t, browserBudget)
			e.requireOK(t, r, "failed")
			if !r.sawSIP("< SIP/2.0 404") {
				e.failf(t, r, "want 404 for sip:nobody@imsgate.test")
			}
		})
	}
}

func TestCancelOut(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newEnv(t, "udp")
			b := startBrowser(t, e.browserOptions(lib.name, lib.page, "cancel-out", "alice", "sip:ring@imsgate.test"))
			r := b.waitResult(t, browserBudget)
			e.requireOK(t, r, "progress", "failed")
			if !r.sawSIP("> CANCEL") || !r.sawSIP("< SIP/2.0 487") {
				e.failf(t, r, "want CANCEL sent and 487 received")
			}
		})
	}
}

func TestCallIn(t *testing.T) {
	cases := []struct {
		name     string
		scenario string // run.js
		uac      string // SIPp
	}{
		{"sipp hangs up", "call-in", "uac_call.xml"},
		{"browser hangs up", "call-in-local-bye", "uac_call_wait_bye.xml"},
	}
	for _, tc := range cases {
		for _, lib := range libraries {
			t.Run(tc.name+"/"+lib.name, func(t *testing.T) {
				e := newEnv(t, "udp")
				b := startBrowser(t, e.browserOptions(lib.name, lib.page, tc.scenario, "carol", ""))
				b.waitEvent(t, "registered", 30*time.Second)
				uac := startSIPpUAC(t, tc.uac, "carol", talkMs)
				r := b.waitResult(t, browserBudget)
				e.requireOK(t, r, "incoming", "confirmed", "ended")
				requireSIPpPassed(t, e, r, uac)
				e.requireBrowserAudio(t, r)
				e.requireSIPpRTP(t, r, uacMediaPort)
			})
		}
	}
}

func TestCancelIn(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newEnv(t, "udp")
			b := startBrowser(t, e.browserOptions(lib.name, lib.page, "cancel-in", "carol", ""))
			b.waitEvent(t, "registered", 30*time.Second)
			uac := startSIPpUAC(t, "uac_cancel.xml", "carol", 1500)
			r := b.waitResult(t, browserBudget)
			e.requireOK(t, r, "incoming", "failed")
			if !r.sawSIP("< CANCEL") {
				e.failf(t, r, "browser never received the CANCEL")
			}
			requireSIPpPassed(t, e, r, uac)
		})
	}
}

// TestDemoWebPhone runs the gateway with no config file (embedded demo core)
// and drives the demo web phone page it serves, as a person would.
func TestDemoWebPhone(t *testing.T) {
	lib := filepath.Join(repoRoot(), "cmd", "imsgate", "webphone", "node_modules", "jssip", "dist", "jssip.min.js")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("web phone library missing (%v): run: npm ci --prefix cmd/imsgate/webphone", err)
	}
	gw := startGateway(t, "", repoRoot())
	e := &env{gateway: gw} // the demo core stands in for Kamailio and SIPp
	art := artifactDir(t)
	b := startBrowser(t, browserOptions{
		Lib:          "webphone",
		PageURL:      "http://" + gatewayWSAddr + "/?uri=sip:alice@imsgate.test&target=sip:echo@imsgate.test",
		Target:       "sip:echo@imsgate.test",
		TalkMs:       talkMs,
		ArtifactsDir: art,
	})
	r := b.waitResult(t, browserBudget)
	e.requireOK(t, r, "registered", "confirmed", "ended")
	e.requireBrowserAudio(t, r)
	if r.Screenshot == "" {
		e.failf(t, r, "no screenshot taken")
	}
	for _, line := range r.Log {
		if strings.Contains(line, "failed") || strings.Contains(line, "error") {
			e.failf(t, r, "page event log shows a problem: %q\n%s", line, strings.Join(r.Log, "\n"))
		}
	}
	// The keypad sends INFO; the gateway answers it and hands the digit to
	// the demo echo as RFC 4733 (it took telephone-event), which logs it.
	if !r.sawSIP("> INFO") {
		e.failf(t, r, "keypad press sent no INFO")
	}
	if countSIP(r.SIP, "< SIP/2.0 200 OK (INFO)") == 0 {
		e.failf(t, r, "keypad INFO was not answered 200: %v", r.SIP)
	}
	if !strings.Contains(gw.log(), "echo call dtmf") {
		e.failf(t, r, "the demo echo logged no digit")
	}
	t.Logf("screenshot: %s; page status %q", r.Screenshot, r.Status)
}

func countSIP(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func indexSIP(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func onPath(name string) bool {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}
