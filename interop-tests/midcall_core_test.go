//go:build interop

package interop

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Session changes that start at the core: SIPp calls carol through
// Kamailio and the gateway, and the Go webua answers as carol.

// TestOptionsInDialog: SIPp asks carol's user agent for its capabilities
// outside any dialog (Kamailio routes the OPTIONS to the gateway's
// Contact) and inside the call. SIPp's scenario checks each 200 carries
// Allow (INVITE, UPDATE), Accept (application/sdp) and Supported.
func TestOptionsInDialog(t *testing.T) {
	_, gw, ua := carolBehindGateway(t)
	c := startCapture(t)
	uac := startSIPpUAC(t, "uac_options.xml", "carol", 2000)
	in := answerNextOrSIPp(t, gw, ua, uac)
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	waitEndedOrSIPp(t, gw, in, uac, 20*time.Second)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	requireSIPpMedia(t, c, uacMediaPort)
	logMedia(t, in)
	t.Logf("in-dialog requests the browser saw: %+v", in.InDialogSeen())
}

// TestHoldFromFarEnd: SIPp holds the call with a re-INVITE saying
// a=sendonly, then resumes with a=sendrecv. Each reaches the browser with
// the direction unchanged; the browser answers recvonly, then sendrecv,
// and SIPp's scenario checks its 200s say the same. The browser's RTP
// toward SIPp stops while held and flows again after.
func TestHoldFromFarEnd(t *testing.T) {
	gw, uac, in, wire := uacToCarol(t, "uac_hold.xml", 2000)

	hold := awaitInDialog(t, gw, in, sip.INVITE, callStep)
	atHold := in.Media()
	if hold.Offer != webua.SendOnly || hold.Answer != webua.RecvOnly {
		failGateway(t, gw, "hold reached the browser as %+v, want an a=sendonly offer answered recvonly", hold)
	}
	resume := awaitInDialog(t, gw, in, sip.INVITE, callStep)
	atResume := in.Media()
	if resume.Offer != webua.SendRecv || resume.Answer != webua.SendRecv {
		failGateway(t, gw, "resume reached the browser as %+v, want a=sendrecv both ways", resume)
	}
	waitMedia(t, gw, in, "sent after the resume", func(s webua.MediaStats) uint64 { return s.Sent }, atResume.Sent+minPhase)
	uacHungUp(t, gw, uac, in, wire, 20*time.Second)

	// The phases on the wire, from the 200s SIPp got for CSeq 1, 2 and 3.
	oks := wire.sipPackets(t, uacPort).to(uacPort).responses(200, "INVITE")
	answered, held, resumed := oks.at(t, 1), oks.at(t, 2), oks.at(t, 3)
	bye := wire.sipPackets(t, uacPort).from(uacPort).requests("BYE").first()
	toSIPp, fromSIPp := wire.times(t, rtpTo(uacMediaPort)), wire.times(t, rtpFrom(uacMediaPort))
	before, during, after := between(toSIPp, answered, held), between(toSIPp, held, resumed), between(toSIPp, resumed, bye)
	t.Logf("RTP to SIPp: %d before the hold, %d during it, %d after the resume; from SIPp: %d in all",
		before, during, after, len(fromSIPp))
	t.Logf("webua sent %d packets while held (%d at the hold, %d at the resume)", atResume.Sent-atHold.Sent, atHold.Sent, atResume.Sent)
	logMedia(t, in)
	if before < minPhase || after < minPhase {
		failGateway(t, gw, "RTP to SIPp: %d packets before the hold and %d after the resume, want %d each", before, after, minPhase)
	}
	if during > inFlight {
		failGateway(t, gw, "RTP to SIPp went on while SIPp held the call (a=sendonly answered recvonly): %d packets", during)
	}
	if sent := atResume.Sent - atHold.Sent; sent > 2 {
		t.Errorf("the webua sent %d packets while it had answered recvonly", sent)
	}
	if len(fromSIPp) == 0 {
		t.Errorf("SIPp sent no RTP")
	}
}

// TestOfferlessReinviteFromFarEnd: SIPp sends a re-INVITE without SDP; the
// gateway's 200 carries its offer (checked by SIPp's scenario), SIPp's ACK
// the answer, and media goes on both ways after it.
func TestOfferlessReinviteFromFarEnd(t *testing.T) {
	gw, uac, in, wire := uacToCarol(t, "uac_offerless.xml", 2500)
	uacHungUp(t, gw, uac, in, wire, 20*time.Second)

	sipp := wire.sipPackets(t, uacPort)
	acked := sipp.from(uacPort).requests("ACK").at(t, 2)
	bye := sipp.from(uacPort).requests("BYE").first()
	to, from := between(wire.times(t, rtpTo(uacMediaPort)), acked, bye), between(wire.times(t, rtpFrom(uacMediaPort)), acked, bye)
	t.Logf("after the ACK with SIPp's answer: %d RTP packets to SIPp, %d from it", to, from)
	t.Logf("in-dialog requests the browser saw: %+v", in.InDialogSeen())
	logMedia(t, in)
	if to < minPhase || from < minPhase {
		failGateway(t, gw, "media after the offerless re-INVITE: %d packets to SIPp, %d from it; want %d each way", to, from, minPhase)
	}
}

// TestCoreMediaMoves: SIPp re-INVITEs with its m-line on another port
// (same codecs, new o= version). Only the core leg cares: the gateway
// answers alone, the browser hears nothing, and the gateway's RTP goes to
// the new port from then on; SIPp echoes it from there (-rtp_echo).
func TestCoreMediaMoves(t *testing.T) {
	gw, uac, in, wire := uacToCarol(t, "uac_media_move.xml", 2500, "-rtp_echo")
	uacHungUp(t, gw, uac, in, wire, 20*time.Second)

	sipp := wire.sipPackets(t, uacPort)
	answered := sipp.to(uacPort).responses(200, "INVITE").at(t, 1)
	moved := sipp.to(uacPort).responses(200, "INVITE").at(t, 2)
	bye := sipp.from(uacPort).requests("BYE").first()
	oldBefore := between(wire.times(t, rtpTo(uacMediaPort)), answered, moved)
	oldAfter := between(wire.times(t, rtpTo(uacMediaPort)), moved, bye)
	newTo := between(wire.times(t, rtpTo(uacMovedMediaPort)), moved, bye)
	newFrom := between(wire.times(t, rtpFrom(uacMovedMediaPort)), moved, bye)
	t.Logf("RTP to SIPp's first port %d: %d before the move, %d after; to its new port %d: %d (echoed back %d)",
		uacMediaPort, oldBefore, oldAfter, uacMovedMediaPort, newTo, newFrom)
	logMedia(t, in)
	requireNoInDialog(t, gw, in, "only the core's media address changed")
	if oldBefore < minPhase {
		failGateway(t, gw, "only %d RTP packets reached SIPp before the move", oldBefore)
	}
	if newTo < minPhase || newFrom < minPhase {
		failGateway(t, gw, "after the move: %d RTP packets to the new port %d, %d echoed from it; want %d each",
			newTo, uacMovedMediaPort, newFrom, minPhase)
	}
	if oldAfter > inFlight {
		failGateway(t, gw, "the gateway kept sending to the old port %d: %d packets after the move", uacMediaPort, oldAfter)
	}
}
