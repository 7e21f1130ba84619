//go:build interop

package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Early media and 100rel toward the core (RFC 3262, RFC 5009): SIPp's UAS
// answers 183 with SDP, Require: 100rel and RSeq: 1 (uas_early_100rel.xml),
// streams a tone as early media, and sends its 200 only once the browser's
// INFO in the early dialog says it heard it (or, withheld, got the 183).
// The gateway PRACKs the 183 itself; the browser sees a plain 183.

// TestEarlyMedia100rel: the browser hears SIPp's early media before the
// 200, SIPp gets the browser's RTP before it too, and the browser never
// sees Require or RSeq. SIP.js plays a 18x's SDP only with its Inviter's
// earlyMedia option, which sipjs-agent.js sets.
func TestEarlyMedia100rel(t *testing.T) {
	t.Run("webua", func(t *testing.T) {
		e := startEarlyCall(t, "sendrecv")
		if !isSDPResponse(e.early) {
			failGateway(t, e.gw, "the browser's %d carries no SDP; SIPp's early media was allowed (P-Early-Media: sendrecv)", e.early.StatusCode)
		}
		waitMedia(t, e.gw, e.call, "received in early media", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
		atInfo := e.call.Media()
		e.finish(t)

		answered := e.call.Timing().Answered
		t.Logf("browser: %d RTP packets received and %d sent before its INFO; first received %s before the 200",
			atInfo.Received, atInfo.Sent, answered.Sub(atInfo.FirstReceived).Round(time.Millisecond))
		if atInfo.FirstReceived.IsZero() || !atInfo.FirstReceived.Before(answered) {
			failGateway(t, e.gw, "the browser heard nothing before the 200 (first packet %s, 200 at %s)", atInfo.FirstReceived, answered)
		}
		n := e.rtpToSIPpBefore200(t)
		t.Logf("tshark: %d RTP packets of the browser reached SIPp before its 200", n)
		if n < minPhase {
			failGateway(t, e.gw, "only %d RTP packets of the browser reached SIPp before its 200: early media must flow both ways", n)
		}
	})
	t.Run("jssip", func(t *testing.T) { testBrowserEarlyMedia(t, "jssip", "jssip.html") })
	t.Run("sipjs", func(t *testing.T) { testBrowserEarlyMedia(t, "sipjs", "sipjs.html") })
}

// TestEarlyMediaWithheld: P-Early-Media: inactive on SIPp's 183 keeps its
// answer from the browser, whose 183 has no SDP; SIPp's tone streams all
// the same, and the browser hears it only after the 200.
func TestEarlyMediaWithheld(t *testing.T) {
	e := startEarlyCall(t, "inactive")
	if isSDPResponse(e.early) {
		failGateway(t, e.gw, "the browser's %d carries SDP although SIPp said P-Early-Media: inactive:\n%s", e.early.StatusCode, e.early.Body())
	}
	e.finish(t)

	answered, got := e.call.Timing().Answered, e.call.Media()
	fromSIPp := between(e.wire.times(t, rtpFrom(echoMediaPort)), time.Time{}, e.sipp200(t))
	t.Logf("SIPp sent %d RTP packets before its 200; the browser's first packet came %s after the 200",
		fromSIPp, got.FirstReceived.Sub(answered).Round(time.Millisecond))
	if fromSIPp < minPhase {
		failGateway(t, e.gw, "SIPp sent %d RTP packets before its 200, want %d: nothing was withheld", fromSIPp, minPhase)
	}
	if got.FirstReceived.Before(answered) {
		failGateway(t, e.gw, "the browser received RTP at %s, before the 200 at %s", got.FirstReceived, answered)
	}
}

// earlyCall is the webua calling uas_early_100rel.xml straight behind the
// gateway, up to the browser's first 18x.
type earlyCall struct {
	gw, uas *proc
	wire    *capture
	call    *webua.Call
	early   *sip.Response // the first 18x the browser got
}

func startEarlyCall(t *testing.T, earlyMedia string) *earlyCall {
	t.Helper()
	e := &earlyCall{wire: startCaptureOf(t, "wire", wireFilter)}
	e.uas = startSIPpUAS(t, "sipp-uas", "uas_early_100rel.xml", directSIPpPort, echoMediaPort, false,
		"-m", "1", "-key", "early_media", earlyMedia)
	e.gw = startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
	ua := dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, e.gw, ua)
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	call, err := ua.Invite(ctx, "sip:echo@imsgate.test")
	if err != nil {
		failGateway(t, e.gw, "invite: %v", err)
	}
	e.call = call
	e.early = awaitProvisional(t, e.gw, call, e.uas)
	for _, h := range []string{"Require", "RSeq"} {
		if v := e.early.GetHeader(h); v != nil {
			failGateway(t, e.gw, "the browser's %d carries %s: %s; 100rel is the gateway's business", e.early.StatusCode, h, v.Value())
		}
	}
	return e
}

// awaitProvisional waits for the call's first 18x.
func awaitProvisional(t *testing.T, gw *proc, call *webua.Call, uas *proc) *sip.Response {
	t.Helper()
	deadline := time.After(callStep)
	for {
		select {
		case res := <-call.Provisional():
			if res.StatusCode > 100 {
				return res
			}
		case <-call.Ended():
			failGateway(t, gw, "call ended (%s) before a 18x", call.EndReason())
		case <-uas.done:
			requireSIPpDone(t, gw, uas, time.Second)
			failGateway(t, gw, "SIPp ended before the browser got a 18x")
		case <-deadline:
			failGateway(t, gw, "no 18x reached the browser within %s", callStep)
		}
	}
}

// finish: the browser's INFO in the early dialog lets SIPp answer; media
// flows after the 200; the browser hangs up; SIPp passes; exactly one
// PRACK went to SIPp, its RAck naming RSeq 1 and the INVITE.
func (e *earlyCall) finish(t *testing.T) {
	t.Helper()
	earlyInfo(t, e.gw, e.call)
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if res, err := e.call.Result(ctx); err != nil || !res.IsSuccess() {
		failGateway(t, e.gw, "invite: %v %v", res, err)
	}
	atAnswer := e.call.Media()
	waitMedia(t, e.gw, e.call, "received after the 200", func(s webua.MediaStats) uint64 { return s.Received }, atAnswer.Received+minPhase)
	logMedia(t, e.call)
	hangUp(t, e.gw, e.call)
	requireSIPpDone(t, e.gw, e.uas, 10*time.Second)
	stopWire(t, e.wire)

	sip := e.wire.sipPackets(t, gatewaySIPPort)
	pracks := sip.to(echoUASPort).requests("PRACK")
	reliable := sip.from(echoUASPort).keep(func(p sipPacket) bool { return p.status == 183 })
	t.Logf("on the wire: SIPp's reliable 183 sent %d times, the gateway's PRACK %d times", len(reliable), len(pracks))
	if len(pracks.firstPerCSeq()) != 1 {
		failGateway(t, e.gw, "want one PRACK transaction toward SIPp, got %d\n%s", len(pracks.firstPerCSeq()), sip)
	}
	tr := readSIPpTrace(t, "sipp-uas-messages.log")
	invites, prack := tr.filter(sippReceived, "INVITE ", "INVITE"), tr.filter(sippReceived, "PRACK ", "PRACK")
	if len(invites) == 0 || len(prack) == 0 {
		t.Fatalf("SIPp's trace lacks the INVITE or the PRACK")
	}
	seq := strings.Fields(invites[0].header("CSeq"))[0]
	if got, want := prack[0].header("RAck"), fmt.Sprintf("1 %s INVITE", seq); got != want {
		failGateway(t, e.gw, "PRACK's RAck is %q, want %q (RSeq 1 of the INVITE)", got, want)
	}
}

// sipp200 is when SIPp's 200 for the INVITE left, from the stopped capture.
func (e *earlyCall) sipp200(t *testing.T) time.Time {
	t.Helper()
	oks := e.wire.sipPackets(t, gatewaySIPPort).from(echoUASPort).responses(200, "INVITE")
	if len(oks) == 0 {
		t.Fatalf("no 200 (INVITE) from SIPp on the wire")
	}
	return oks[0].at
}

func (e *earlyCall) rtpToSIPpBefore200(t *testing.T) int {
	t.Helper()
	return between(e.wire.times(t, rtpTo(echoMediaPort)), time.Time{}, e.sipp200(t))
}

func isSDPResponse(res *sip.Response) bool {
	ct := res.GetHeader("Content-Type")
	return ct != nil && len(res.Body()) > 0 && strings.EqualFold(ct.Value(), "application/sdp")
}

// testBrowserEarlyMedia: a real browser calls the same SIPp UAS through
// Kamailio; getStats() shows 50 packets in before the 2xx, and the
// WebSocket shows a 183 with SDP, no Require or RSeq, and no PRACK sent.
func testBrowserEarlyMedia(t *testing.T, lib, page string) {
	kam := startKamailio(t)
	uas := startSIPpUAS(t, "sipp-uas", "uas_early_100rel.xml", echoUASPort, echoMediaPort, false,
		"-m", "1", "-key", "early_media", "sendrecv")
	e := &env{kamailio: kam, capture: startCapture(t)}
	e.gateway = startGateway(t, gatewayConfig("udp"), repoRoot())
	e.pageBase = startStaticServer(t)
	r := startBrowser(t, e.browserOptions(lib, page, "call-out-early", "alice", "sip:echo@imsgate.test")).waitResult(t, browserBudget)
	e.requireOK(t, r, "progress", "accepted", "confirmed", "ended")
	requireSIPpDone(t, e.gateway, uas, 10*time.Second)

	p := r.Phases
	t.Logf("getStats packets in/out: early (before the 2xx) %d/%d, at confirmed %d/%d, after %d/%d",
		p["early"].Inbound, p["early"].Outbound, p["confirmed"].Inbound, p["confirmed"].Outbound, p["after"].Inbound, p["after"].Outbound)
	if p["early"].Inbound < minHeard {
		e.failf(t, r, "the browser received %d packets before the 2xx, want %d", p["early"].Inbound, minHeard)
	}
	if p["early"].Outbound == 0 {
		e.failf(t, r, "the browser sent nothing during early media")
	}
	var early []string
	for _, l := range r.SIP {
		if strings.HasPrefix(l, "< SIP/2.0 18") {
			early = append(early, l)
		}
	}
	if len(early) == 0 || !strings.Contains(early[0], "[sdp]") {
		e.failf(t, r, "want a 18x with SDP on the WebSocket, got %q", early)
	}
	for _, l := range early {
		if strings.Contains(l, "[RSeq]") {
			e.failf(t, r, "the browser got a reliable provisional (Require/RSeq): %s", l)
		}
	}
	if r.sawSIP("> PRACK") {
		e.failf(t, r, "the browser sent a PRACK")
	}
	e.requireBrowserAudio(t, r)
	e.requireSIPpRTP(t, r, echoMediaPort)
}
