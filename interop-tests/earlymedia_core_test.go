//go:build interop

package interop

import (
	"context"
	"testing"
	"time"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// TestReliable18xToCore: SIPp calls carol through Kamailio with Require:
// 100rel (uac_100rel.xml). The webua answers 183 with SDP (early media),
// then 200. The gateway's 183 to SIPp is reliable (Require, RSeq, SDP;
// SIPp checks), SIPp PRACKs it and the gateway answers the PRACK itself,
// and its 200 for the INVITE waits for that PRACK (RFC 3262 §3). The
// browser sees no PRACK. Media flows both ways.
func TestReliable18xToCore(t *testing.T) {
	_, gw, ua := carolBehindGateway(t)
	wire := startCaptureOf(t, "wire", uacWireFilter)
	uac := startSIPpUAC(t, "uac_100rel.xml", "carol", 2000)
	var in *webua.Call
	select {
	case in = <-ua.Incoming():
	case <-uac.done:
		requireSIPpDone(t, gw, uac, time.Second)
	case <-time.After(callStep):
		failGateway(t, gw, "no call reached the browser within %s", callStep)
	}
	if in == nil {
		failGateway(t, gw, "websocket closed before a call came in")
	}
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if err := in.Progress(ctx); err != nil {
		failGateway(t, gw, "183: %v", err)
	}
	if err := in.Answer(ctx); err != nil {
		failGateway(t, gw, "answer: %v", err)
	}
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	waitEndedOrSIPp(t, gw, in, uac, 20*time.Second)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	requireSIPpMedia(t, wire, uacMediaPort)

	sip := wire.sipPackets(t, uacPort)
	reliable := sip.to(uacPort).keep(func(p sipPacket) bool { return p.status == 183 })
	pracks := sip.from(uacPort).requests("PRACK")
	prackOK := sip.to(uacPort).responses(200, "PRACK")
	answered := sip.to(uacPort).responses(200, "INVITE")
	t.Logf("at SIPp: the gateway's reliable 183 came %d times, SIPp's PRACK went %d times (answered %d), the 200 (INVITE) came %d times",
		len(reliable), len(pracks), len(prackOK), len(answered))
	logMedia(t, in)
	if len(pracks) == 0 || len(prackOK) == 0 || len(answered) == 0 {
		failGateway(t, gw, "want the PRACK answered 200 and the INVITE answered 200\n%s", sip)
	}
	if answered[0].at.Before(pracks[0].at) {
		failGateway(t, gw, "the 200 (INVITE) left before SIPp's PRACK of the reliable 183 with SDP\n%s", sip)
	}
	for _, s := range in.InDialogSeen() {
		if s.Method == "PRACK" {
			failGateway(t, gw, "the browser got a PRACK")
		}
	}
}
