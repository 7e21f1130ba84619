//go:build interop

package interop

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// A call survives its WebSocket: SIPp calls carol through Kamailio, the Go
// webua answers, then its WebSocket drops (no close frame, no BYE, as a
// lost network or a reload). Within calls.reconnect_grace a browser that
// registers the same Contact again gets its call back; past it the call
// ends with BYE toward the core and the binding goes from Kamailio.

// Gateway log lines the tests wait on (b2bua/reconnect.go, call.go).
const (
	logCallKept     = `browser's WebSocket dropped; call kept for its reconnection`
	logCallMoved    = `browser reconnected; call moved to its new connection`
	logNotBack      = `browser did not reconnect in time`
	logEndReconnect = `call ended.*"reason": "reconnect_timeout"`
)

// TestCallSurvivesWebSocketDrop: audio flows both ways while the browser
// has no WebSocket; back on a new one and registered again, its INFO
// reaches SIPp, SIPp's INFO and re-INVITEs (hold, resume) reach it, and
// its BYE ends the call at SIPp.
func TestCallSurvivesWebSocketDrop(t *testing.T) {
	callSurvivesReconnect(t, func(gw *proc, ua *webua.UA) time.Time { return dropWebSocket(t, gw, ua) })
}

// TestCallSurvivesSilentReconnect: the browser comes back on a new
// WebSocket while its old one is still open at the gateway (a NAT that
// forgot the connection sends no FIN; a handover to another network).
// Its REGISTER of the same Contact and +sip.instance takes the call over,
// and the gateway closes the old connection (1000, "replaced by a new
// connection").
func TestCallSurvivesSilentReconnect(t *testing.T) {
	var ua *webua.UA
	callSurvivesReconnect(t, func(gw *proc, u *webua.UA) time.Time {
		ua = u
		at := time.Now()
		if err := u.Abandon(); err != nil {
			failGateway(t, gw, "abandon: %v", err)
		}
		return at
	})
	ce, err := ua.AbandonedClose(callStep)
	if err != nil || ce == nil || ce.Code != 1000 || ce.Text != "replaced by a new connection" {
		t.Fatalf("the old connection's close: %v %v, want 1000 replaced by a new connection", ce, err)
	}
	t.Logf("old connection closed by the gateway: %d %q", ce.Code, ce.Text)
}

// callSurvivesReconnect: the browser leaves its WebSocket in a call as
// leave does it, redials and registers again; audio goes on throughout
// and the call carries on over the new connection.
func callSurvivesReconnect(t *testing.T, leave func(gw *proc, ua *webua.UA) time.Time) {
	_, gw, ua := carolBehindGateway(t)
	wire := startCaptureOf(t, "wire", uacWireFilter)
	uac := startSIPpUAC(t, "uac_reconnect.xml", "carol", 0)
	in := answerNextOrSIPp(t, gw, ua, uac)
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)

	dropped := leave(gw, ua)
	atDrop := in.Media()
	// Audio is UDP: it goes on while no WebSocket is there.
	// Both ways, with a margin: the wire's count of the same window is
	// taken by other clocks (tshark's, the gateway's) and may be a packet short.
	waitMedia(t, gw, in, "received while disconnected", func(s webua.MediaStats) uint64 { return s.Received }, atDrop.Received+minPhase+reconnectMargin)
	waitMedia(t, gw, in, "sent while disconnected", func(s webua.MediaStats) uint64 { return s.Sent }, atDrop.Sent+minPhase+reconnectMargin)
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if err := ua.Redial(ctx); err != nil {
		failGateway(t, gw, "redial: %v", err)
	}
	back := time.Now()
	atBack := in.Media()
	if res, err := ua.Register(ctx, 600*time.Second); err != nil || !res.IsSuccess() {
		failGateway(t, gw, "register again: %v %v", res, err)
	}
	if err := gw.waitLog(logCallMoved, callStep); err != nil {
		failGateway(t, gw, "%v", err)
	}
	if res, err := in.SendInfo(ctx, "application/x-imsgate-test", "back\r\n"); err != nil || !res.IsSuccess() {
		failGateway(t, gw, "the browser's INFO on its new WebSocket: %v %v", res, err)
	}
	awaitInDialog(t, gw, in, sip.INFO, callStep)
	hold := awaitInDialog(t, gw, in, sip.INVITE, callStep)
	resume := awaitInDialog(t, gw, in, sip.INVITE, callStep)
	if hold.Offer != webua.SendOnly || resume.Offer != webua.SendRecv {
		failGateway(t, gw, "SIPp's re-INVITEs reached the browser as %+v and %+v, want hold then resume", hold, resume)
	}
	atResume := in.Media()
	waitMedia(t, gw, in, "sent after the resume", func(s webua.MediaStats) uint64 { return s.Sent }, atResume.Sent+minPhase)
	hangUp(t, gw, in)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	stopWire(t, wire)

	to := between(wire.times(t, rtpTo(uacMediaPort)), dropped, back)
	from := between(wire.times(t, rtpFrom(uacMediaPort)), dropped, back)
	t.Logf("without a WebSocket for %s: %d RTP packets reached SIPp, SIPp sent %d; the browser received %d, sent %d",
		back.Sub(dropped).Round(time.Millisecond), to, from, atBack.Received-atDrop.Received, atBack.Sent-atDrop.Sent)
	logMedia(t, in)
	if to < minPhase || from < minPhase {
		failGateway(t, gw, "RTP while the WebSocket was down: %d packets to SIPp, %d from it; want %d each way", to, from, minPhase)
	}
}

// TestCallEndsWhenBrowserDoesNotReturn: with calls.reconnect_grace 3s and
// no reconnection, SIPp gets the BYE after the grace, the gateway's
// Contact goes from Kamailio (a call to carol gets 404) and the gateway
// logs the call's end.
func TestCallEndsWhenBrowserDoesNotReturn(t *testing.T) {
	const grace = 3 * time.Second
	kam := startKamailio(t)
	gw := startGateway(t, gatewayConfig("udp")+fmt.Sprintf("calls:\n  reconnect_grace: %s\n", grace), repoRoot())
	ua := dialWebUA(t, "sip:carol@imsgate.test")
	registerWebUA(t, gw, ua)
	c := startCapture(t)
	uac := startSIPpUAC(t, "uac_call_wait_bye.xml", "carol", 0)
	in := answerNextOrSIPp(t, gw, ua, uac)
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	registers := countLog(kam, kamailioRegister)

	dropped := dropWebSocket(t, gw, ua)
	requireSIPpDone(t, gw, uac, grace+15*time.Second)
	byeAfter := time.Since(dropped)
	if err := gw.waitLog(logEndReconnect, callStep); err != nil {
		failGateway(t, gw, "%v", err)
	}
	// The gateway's de-registration reaches Kamailio; then carol has no binding.
	if err := waitLogCount(kam, kamailioRegister, registers+1, callStep); err != nil {
		failGateway(t, gw, "no de-registration reached Kamailio: %v", err)
	}
	requireSIPpMedia(t, c, uacMediaPort)
	t.Logf("SIPp's call ended by BYE within %s of the drop (grace %s)", byeAfter.Round(time.Millisecond), grace)
	if byeAfter < grace {
		failGateway(t, gw, "SIPp got its BYE %s after the drop, before the grace of %s was over", byeAfter, grace)
	}
	if !strings.Contains(gw.log(), logNotBack) {
		failGateway(t, gw, "gateway log does not say the browser did not come back")
	}
	gone := startSIPpUAC(t, "uac_expect_404.xml", "carol", 0)
	requireSIPpDone(t, gw, gone, 15*time.Second)
}

// reconnectMargin is the packets the browser waits for beyond minPhase
// before it reconnects.
const reconnectMargin = 5

// kamailioRegister is Kamailio's log line for a REGISTER from the gateway.
const kamailioRegister = `request REGISTER sip:imsgate\.test from 127\.0\.0\.1:5070`

// dropWebSocket drops the webua's WebSocket and waits until the gateway
// has parked the call; it returns when the drop happened.
func dropWebSocket(t *testing.T, gw *proc, ua *webua.UA) time.Time {
	t.Helper()
	at := time.Now()
	if err := ua.Drop(); err != nil {
		failGateway(t, gw, "drop: %v", err)
	}
	if err := gw.waitLog(logCallKept, callStep); err != nil {
		failGateway(t, gw, "%v", err)
	}
	return at
}

func countLog(p *proc, pattern string) int {
	return len(regexp.MustCompile(pattern).FindAllStringIndex(p.log(), -1))
}

// waitLogCount polls p's log until pattern matches at least n times.
func waitLogCount(p *proc, pattern string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for countLog(p, pattern) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s logged %q %d times within %s, want %d", p.name, pattern, countLog(p, pattern), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
