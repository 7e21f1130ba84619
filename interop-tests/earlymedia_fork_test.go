//go:build interop

package interop

import (
	"context"
	"testing"
	"time"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// TestForkedEarlyMedia: the core forks (uas_early_forked.xml plays both
// forks). Fork A's 183 names SIPp's port 6002, which echoes; fork B's 183
// then names 6000, where a tone plays and which echoes too. The browser
// hears the latest fork: its RTP goes to B and B's tone reaches it. B goes
// quiet and fork A answers with its own description: media follows the
// 2xx back to 6002.
func TestForkedEarlyMedia(t *testing.T) {
	const forkA, forkB = echoMediaPort + 2, echoMediaPort
	wire := startCaptureOf(t, "wire", wireFilter)
	uas := startSIPpUAS(t, "sipp-uas", "uas_early_forked.xml", directSIPpPort, echoMediaPort, true, "-m", "1")
	gw := startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
	ua := dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	call, err := ua.Invite(ctx, "sip:echo@imsgate.test")
	if err != nil {
		failGateway(t, gw, "invite: %v", err)
	}
	tone := func(s webua.MediaStats) uint64 { return s.Received - s.Echoed }
	echoed := func(s webua.MediaStats) uint64 { return s.Echoed }

	awaitProvisional(t, gw, call, uas)
	waitMedia(t, gw, call, "echoed through fork A", echoed, minEchoed)
	earlyInfo(t, gw, call)
	awaitProvisional(t, gw, call, uas)
	atB := call.Media()
	waitMedia(t, gw, call, "of fork B's tone", tone, tone(atB)+minPhase)
	earlyInfo(t, gw, call)
	if res, err := call.Result(ctx); err != nil || !res.IsSuccess() {
		failGateway(t, gw, "invite: %v %v", res, err)
	}
	answered := call.Media()
	waitMedia(t, gw, call, "echoed after fork A's 200", echoed, answered.Echoed+minEchoed)
	hangUp(t, gw, call)
	requireSIPpDone(t, gw, uas, 10*time.Second)
	stopWire(t, wire)

	sip := wire.sipPackets(t, gatewaySIPPort).from(echoUASPort)
	b183 := sip.keep(func(p sipPacket) bool { return p.status == 183 && p.toTag == "forkB" }).first()
	ok := sip.responses(200, "INVITE").first()
	toA, toB := wire.times(t, rtpTo(forkA)), wire.times(t, rtpTo(forkB))
	end := time.Now()
	t.Logf("wire: RTP to fork A (%d) %d packets before B's 183, %d while B was the latest, %d after A's 200; to fork B (%d) %d, %d, %d",
		forkA, between(toA, time.Time{}, b183), between(toA, b183, ok), between(toA, ok, end),
		forkB, between(toB, time.Time{}, b183), between(toB, b183, ok), between(toB, ok, end))
	logMedia(t, call)
	if n := between(toB, b183, ok); n < minPhase {
		failGateway(t, gw, "only %d RTP packets went to fork B, the latest early dialog, before the 200", n)
	}
	if n := between(toA, b183, ok); n > inFlight {
		failGateway(t, gw, "RTP kept going to fork A after fork B's 183: %d packets", n)
	}
	if n := between(toA, ok, end); n < minPhase {
		failGateway(t, gw, "only %d RTP packets went to fork A after its 200 named it", n)
	}
	if n := between(toB, ok, end); n > inFlight {
		failGateway(t, gw, "RTP kept going to fork B after fork A's 200: %d packets", n)
	}
}

// earlyInfo tells SIPp, by INFO in the early dialog, that the browser hears
// the early media it wants.
func earlyInfo(t *testing.T, gw *proc, call *webua.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if res, err := call.SendInfo(ctx, "application/x-imsgate-test", "early media heard\r\n"); err != nil || !res.IsSuccess() {
		failGateway(t, gw, "INFO in the early dialog: %v %v", res, err)
	}
}
