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

// Session changes that start at the browser: the Go webua calls a SIPp
// UAS straight behind the gateway (no Kamailio), so every message SIPp
// checks is one the gateway sent.

// TestHoldFromBrowser: the browser holds (a=sendonly) and resumes
// (a=sendrecv) by re-INVITE or UPDATE. The direction reaches SIPp
// unchanged — by re-INVITE unless SIPp's Allow lists UPDATE and the
// browser used UPDATE — and SIPp's answers (recvonly, sendrecv) come back
// as the browser's answers; SIPp's scenario checks the directions. The
// browser's RTP reaches SIPp through the hold, and its echo comes back
// after the resume.
func TestHoldFromBrowser(t *testing.T) {
	cases := []struct {
		name     string
		method   sip.RequestMethod // the browser's
		scenario string            // what SIPp expects
	}{
		{"reinvite", sip.INVITE, "uas_hold.xml"},
		{"update to a core without UPDATE", sip.UPDATE, "uas_hold.xml"},
		{"update", sip.UPDATE, "uas_hold_update.xml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := startCaptureOf(t, "wire", uasWireFilter)
			uas := startSIPpUAS(t, "sipp-uas", tc.scenario, directSIPpPort, echoMediaPort, true, "-m", "1")
			gw := startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
			ua := dialWebUA(t, "sip:alice@imsgate.test")
			registerWebUA(t, gw, ua)
			call := placeCall(t, gw, ua, "sip:echo@imsgate.test")
			waitMedia(t, gw, call, "echoed", func(s webua.MediaStats) uint64 { return s.Echoed }, minEchoed)

			reoffer(t, gw, call, tc.method, webua.SendOnly, webua.RecvOnly)
			atHold := call.Media()
			// On hold the browser still sends (sendonly): let half a second pass.
			waitMedia(t, gw, call, "sent on hold", func(s webua.MediaStats) uint64 { return s.Sent }, atHold.Sent+minPhase)
			reoffer(t, gw, call, tc.method, webua.SendRecv, webua.SendRecv)
			atResume := call.Media()
			waitMedia(t, gw, call, "echoed after the resume", func(s webua.MediaStats) uint64 { return s.Echoed }, atResume.Echoed+minEchoed)
			hangUp(t, gw, call)
			requireSIPpDone(t, gw, uas, 10*time.Second)
			stopWire(t, wire)

			sipp := wire.sipPackets(t, gatewaySIPPort)
			changes := sipp.to(echoUASPort).requests(string(expectedToCore(tc.method, tc.scenario))).firstPerCSeq()
			t.Logf("toward SIPp: %d %s transactions; browser got %d packets while holding (%d at hold, %d at resume)",
				len(changes), expectedToCore(tc.method, tc.scenario), atResume.Received-atHold.Received, atHold.Received, atResume.Received)
			logMedia(t, call)
			held := sipp.from(echoUASPort).responses(200, string(expectedToCore(tc.method, tc.scenario))).firstPerCSeq()
			if len(held) < 2 {
				failGateway(t, gw, "SIPp answered %d %s requests with 200, want the hold and the resume\n%s", len(held), expectedToCore(tc.method, tc.scenario), sipp)
			}
			toSIPp := wire.times(t, rtpTo(echoMediaPort))
			holdAt, resumeAt := held[len(held)-2].at, held[len(held)-1].at
			if n := between(toSIPp, holdAt, resumeAt); n < minPhase {
				failGateway(t, gw, "the held browser's RTP (sendonly) reached SIPp %d times, want %d", n, minPhase)
			}
		})
	}
}

// expectedToCore is the method the change must reach SIPp as.
func expectedToCore(browser sip.RequestMethod, scenario string) sip.RequestMethod {
	if browser == sip.UPDATE && scenario == "uas_hold_update.xml" {
		return sip.UPDATE
	}
	return sip.INVITE
}

// TestGlare: the browser holds by re-INVITE while SIPp, before answering
// the gateway's re-INVITE on its leg, sends one of its own (uas_glare.xml
// orders it so). The gateway answers SIPp's 491 (its own is pending);
// SIPp answers the gateway's 491 too, and the gateway retries after the
// RFC 3261 §14.1 back-off — 2.1 to 4 s, as it chose that leg's Call-ID.
// The browser's hold then succeeds, SIPp's retried re-INVITE reaches the
// held browser, and after the browser's resume media flows both ways.
func TestGlare(t *testing.T) {
	wire := startCaptureOf(t, "wire", uasWireFilter)
	uas := startSIPpUAS(t, "sipp-uas", "uas_glare.xml", directSIPpPort, echoMediaPort, true, "-m", "1")
	gw := startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
	ua := dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)
	call := placeCall(t, gw, ua, "sip:echo@imsgate.test")
	waitMedia(t, gw, call, "echoed", func(s webua.MediaStats) uint64 { return s.Echoed }, minEchoed)

	// Should the gateway pass a 491 on instead, the browser retries as a
	// browser does (it chose its Call-ID: after 2.1 to 4 s).
	hold := glareReoffer(t, gw, call, webua.SendOnly, webua.RecvOnly)
	crossed := awaitInDialog(t, gw, call, sip.INVITE, callStep)
	if crossed.Crossed {
		// The browser got it before it had ACKed: 491, as JsSIP answers.
		t.Logf("SIPp's re-INVITE reached the browser before its ACK went: 491; waiting for the gateway's retry")
		crossed = awaitInDialog(t, gw, call, sip.INVITE, callStep)
	}
	// RFC 3261 §14.1: no new INVITE while one is in progress either way.
	if offeredBeforeACK(gw.log(), hold.CSeq().SeqNo) {
		t.Errorf("the gateway sent its re-INVITE to the browser before the ACK of the browser's re-INVITE (CSeq %d) reached it", hold.CSeq().SeqNo)
	}
	if crossed.Offer != webua.SendRecv || crossed.Answer != webua.SendOnly {
		failGateway(t, gw, "SIPp's retried re-INVITE reached the held browser as %+v, want a=sendrecv answered sendonly", crossed)
	}
	glareReoffer(t, gw, call, webua.SendRecv, webua.SendRecv)
	atResume := call.Media()
	waitMedia(t, gw, call, "echoed after the resume", func(s webua.MediaStats) uint64 { return s.Echoed }, atResume.Echoed+minEchoed)
	hangUp(t, gw, call)
	requireSIPpDone(t, gw, uas, 10*time.Second)
	stopWire(t, wire)

	sipp := wire.sipPackets(t, gatewaySIPPort)
	ours := sipp.to(echoUASPort).requests("INVITE").firstPerCSeq()
	refused := sipp.from(echoUASPort).responses(491, "INVITE").firstPerCSeq()
	theirs := sipp.from(echoUASPort).requests("INVITE").firstPerCSeq()
	t.Logf("gateway's INVITEs to SIPp at %s; SIPp's 491 at %s; SIPp's re-INVITEs at %s",
		ours.offsets(ours.first()), refused.offsets(ours.first()), theirs.offsets(ours.first()))
	logMedia(t, call)
	if len(refused) != 1 || len(ours) < 4 || len(theirs) != 2 {
		failGateway(t, gw, "want the INVITE, a re-INVITE refused 491, its retry and the resume from the gateway, and SIPp's two re-INVITEs\n%s", sipp)
	}
	if backoff := ours[2].at.Sub(refused[0].at); backoff < 2100*time.Millisecond-50*time.Millisecond || backoff > 4*time.Second+time.Second {
		t.Errorf("gateway retried %s after the 491, want 2.1 to 4 s (RFC 3261 14.1, it owns the Call-ID)", backoff)
	}
	if got := sipp.to(echoUASPort).responses(491, "INVITE"); len(got) == 0 {
		t.Errorf("SIPp's crossing re-INVITE got no 491 from the gateway\n%s", sipp)
	}
}

// glareReoffer is reoffer by re-INVITE that, on 491, waits out the
// back-off of the Call-ID's owner (RFC 3261 §14.1) and tries once more.
func glareReoffer(t *testing.T, gw *proc, call *webua.Call, want, answer webua.Direction) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*callStep)
	defer cancel()
	res, err := call.Reoffer(ctx, sip.INVITE, want)
	if err == nil && res.StatusCode == sip.StatusRequestPending {
		t.Logf("browser's re-INVITE offering %s got 491: retrying after 3 s", want)
		time.Sleep(3 * time.Second) // the back-off itself, RFC 3261 §14.1
		res, err = call.Reoffer(ctx, sip.INVITE, want)
	}
	if err != nil {
		failGateway(t, gw, "re-INVITE offering %s: %v", want, err)
	}
	if got := webua.DirectionOf(string(res.Body())); !res.IsSuccess() || got != answer {
		failGateway(t, gw, "re-INVITE offering %s: %d %s with %q, want 200 with %s", want, res.StatusCode, res.Reason, got, answer)
	}
	return res
}

// offeredBeforeACK reads the gateway's WebSocket trace (sipws debug lines):
// did an INVITE go out to the browser after the 200 for the browser's
// re-INVITE with CSeq cseq, but before that re-INVITE's ACK came in?
func offeredBeforeACK(log string, cseq uint32) bool {
	ok := `"status": 200, "sip_call_id": `
	n := fmt.Sprintf(`"cseq": %d}`, cseq)
	answered := false
	for _, line := range strings.Split(log, "\n") {
		switch {
		case !strings.Contains(line, "sipws/conn.go"):
		case strings.Contains(line, "sip out") && strings.Contains(line, ok) && strings.HasSuffix(line, n):
			answered = true
		case strings.Contains(line, "sip in") && strings.Contains(line, `"method": "ACK"`) && strings.HasSuffix(line, n):
			// The reader logs the ACK before the call can act on it; the
			// writer may log our 200 after it: lines of two goroutines.
			return false
		case answered && strings.Contains(line, "sip out") && strings.Contains(line, `"method": "INVITE"`):
			return true
		}
	}
	return false
}
