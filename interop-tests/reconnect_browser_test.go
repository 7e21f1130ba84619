//go:build interop

package interop

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A call survives its WebSocket, with real browser stacks: SIPp calls
// carol through Kamailio (uac_reconnect.xml), the browser answers; once
// audio flows the test kills the WebSocket's TCP connection (ss -K: no
// close frame, as a lost network). The library reconnects and registers
// the same Contact by itself, and the gateway hands it the call: the
// browser's INFO reaches SIPp, SIPp's INFO and re-INVITEs (hold, resume)
// reach the browser, and its BYE ends the call at SIPp.

// TestCallSurvivesWebSocketDrop_jssip: JsSIP keeps its RTCSession through
// a transport reconnection (UA.js onTransportDisconnect only fails
// transactions in flight) and waits connection_recovery_min_interval (2 s)
// before reconnecting: audio must flow both ways meanwhile.
func TestCallSurvivesWebSocketDrop_jssip(t *testing.T) {
	testBrowserReconnect(t, "jssip", "jssip.html", minPhase)
}

// TestCallSurvivesWebSocketDrop_sipjs: SIP.js reconnects at once (its
// first attempt has no delay), so the time without a WebSocket is too
// short to ask for a count of packets in it; the call must go on all the
// same.
func TestCallSurvivesWebSocketDrop_sipjs(t *testing.T) {
	testBrowserReconnect(t, "sipjs", "sipjs.html", 0)
}

// testBrowserReconnect: offline is how many RTP packets must flow each
// way while the browser has no WebSocket.
func testBrowserReconnect(t *testing.T, lib, page string, offline int) {
	e := &env{kamailio: startKamailio(t), capture: startCaptureOf(t, "wire", uacWireFilter)}
	e.gateway = startGateway(t, gatewayConfig("udp"), repoRoot())
	e.pageBase = startStaticServer(t)
	b := startBrowser(t, e.browserOptions(lib, page, "call-in-reconnect", "carol", ""))
	b.waitEvent(t, "registered", 30*time.Second)
	uac := startSIPpUAC(t, "uac_reconnect.xml", "carol", 0)
	b.waitEvent(t, "talking", 30*time.Second)
	dropped := killWebSockets(t, e.gateway)
	b.waitEvent(t, "back", 30*time.Second)
	back := time.Now()
	if err := e.gateway.waitLog(logCallMoved, callStep); err != nil {
		failGateway(t, e.gateway, "%v", err)
	}
	r := b.waitResult(t, browserBudget)
	e.requireOK(t, r, "incoming", "confirmed", "disconnected", "info_sent", "info_in", "ended")
	requireSIPpPassed(t, e, r, uac)

	p := r.Phases
	t.Logf("getStats packets in/out: talking %d/%d, at the drop %d/%d, registered again %d/%d, resumed %d/%d, after %d/%d",
		p["before"].Inbound, p["before"].Outbound, p["dropped"].Inbound, p["dropped"].Outbound,
		p["back"].Inbound, p["back"].Outbound, p["resumed"].Inbound, p["resumed"].Outbound, p["after"].Inbound, p["after"].Outbound)
	t.Logf("page events: registered %d times, connected %d times; far end's INFO %q; re-INVITEs offering %q",
		len(r.details("registered")), len(r.details("connected")), r.details("info_in"), r.details("reinvite"))
	if got := r.details("reinvite"); len(got) != 2 || got[0] != "sendonly" || got[1] != "sendrecv" {
		e.failf(t, r, "SIPp's re-INVITEs reached the browser offering %q, want sendonly then sendrecv", got)
	}
	if in, out := p["back"].Inbound-p["dropped"].Inbound, p["back"].Outbound-p["dropped"].Outbound; in < offline || out < offline {
		e.failf(t, r, "without a WebSocket the browser received %d and sent %d packets, want %d each", in, out, offline)
	}
	if p["resumed"].Inbound <= p["back"].Inbound || p["after"].Outbound <= p["resumed"].Outbound {
		e.failf(t, r, "audio did not go on after the reconnection: %+v", p)
	}
	e.requireBrowserAudio(t, r)
	e.requireSIPpRTP(t, r, uacMediaPort)
	to := between(e.capture.times(t, rtpTo(uacMediaPort)), dropped, back)
	from := between(e.capture.times(t, rtpFrom(uacMediaPort)), dropped, back)
	t.Logf("tshark: from the drop to the browser's new registration (%s) %d RTP packets reached SIPp, SIPp sent %d",
		back.Sub(dropped).Round(time.Millisecond), to, from)
	if to < offline || from < offline {
		failGateway(t, e.gateway, "RTP while the WebSocket was down: %d packets to SIPp, %d from it; want %d each way", to, from, offline)
	}
}

// killWebSockets destroys the gateway's WebSocket TCP connections (ss -K:
// the kernel resets them, neither end sends a close frame) and waits until
// the gateway has parked the call; it returns when the drop happened.
func killWebSockets(t *testing.T, gw *proc) time.Time {
	t.Helper()
	at := time.Now()
	resetWebSockets(t)
	if err := gw.waitLog(logCallKept, callStep); err != nil {
		failGateway(t, gw, "%v", err)
	}
	return at
}

// resetWebSockets destroys the gateway's WebSocket TCP connections (ss -K:
// the kernel resets them, neither end sends a close frame).
func resetWebSockets(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ss", "-K", "-t", "-n", "state", "established", "( sport = :8080 )").CombinedOutput()
	if err != nil {
		t.Fatalf("ss -K: %v\n%s", err, out)
	}
	if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines < 1 {
		t.Fatalf("ss -K found no WebSocket connection to kill:\n%s", out)
	}
	t.Logf("killed:\n%s", out)
}
