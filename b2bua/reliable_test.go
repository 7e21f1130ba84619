package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestWePrackTheCore: the core's reliable 183 with early media is PRACKed
// by the gateway; the browser gets a plain 183 with its answer, once even
// when the core repeats the 183; the 200 follows.
func TestWePrackTheCore(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	if !hasTag(inv, "Supported", "100rel") || inv.GetHeader("P-Early-Media") == nil {
		t.Fatalf("our INVITE must offer 100rel and early media:\n%s", inv)
	}
	early := reply(inv, 183, "Session Progress", "t1", "Contact: <sip:bob@"+core.addr()+">\r\nRequire: 100rel\r\nRSeq: 1\r\n", coreAnswerSDP)
	core.send(early)
	pr := core.expect(sip.PRACK)
	if got := headerValue(pr, "RAck"); got != "1 1 INVITE" || tagOf(pr.To().Params) != "t1" {
		t.Fatalf("PRACK RAck %q to-tag %q", got, tagOf(pr.To().Params))
	}
	res := f.expectStatus(t)
	if res.StatusCode != 183 || len(res.Body()) == 0 || res.GetHeader("RSeq") != nil || hasTag(res, "Require", "100rel") {
		t.Fatalf("browser got %d (body %d B, RSeq %v)", res.StatusCode, len(res.Body()), res.GetHeader("RSeq"))
	}
	core.send(early) // a retransmission: neither relayed nor PRACKed again
	core.send(reply(pr, 200, "OK", "", "", ""))
	core.quiet(100 * time.Millisecond)
	core.send(reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", coreAnswerSDP))
	core.expect(sip.ACK)
	if res := f.expectStatus(t); res.StatusCode != 200 {
		t.Fatalf("browser got %d, want 200", res.StatusCode)
	}
}

// TestEarlyMediaWithheld: P-Early-Media: inactive keeps the 183's answer
// from the browser; it gets it with the 200, which carries no SDP of its
// own (the answer was the 183's).
func TestEarlyMediaWithheld(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 183, "Session Progress", "t1", "Contact: <sip:bob@"+core.addr()+">\r\nP-Early-Media: inactive\r\n", coreAnswerSDP))
	if res := f.expectStatus(t); res.StatusCode != 183 || len(res.Body()) != 0 {
		t.Fatalf("browser got %d with %d B of SDP, want 183 without", res.StatusCode, len(res.Body()))
	}
	core.send(reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", ""))
	core.expect(sip.ACK)
	if res := f.expectStatus(t); res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=fingerprint") {
		t.Fatalf("browser got %d without its answer", res.StatusCode)
	}
}

// TestReliable18xToCore: the core requires 100rel; our 183 with the
// browser's answer is sent reliably and retransmitted until the PRACK, and
// the browser's 200 waits for it.
func TestReliable18xToCore(t *testing.T) {
	g, core, _ := newRawRig(t)
	f := newFakeFlow("f1")
	attach(g, f)
	b := registerBrowser(t, g, core, f)
	core.sendTo(coreInviteTo(core, b, "rel1", "Require: 100rel\r\nSupported: 100rel\r\n"), g.core.udpLocal.String())
	webInv := f.nextRequest(t)
	answer := browserAnswer(t, webInv.Body())
	for _, code := range []int{183, 200} {
		res := sip.NewResponseFromRequest(webInv, code, "", nil)
		res.To().Params.Add("tag", "web1")
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "a1", Host: "x.invalid"}, Params: sip.NewParams()})
		setSDP(res, []byte(answer))
		g.handleWeb(f, res)
	}
	first := core.expectResponse()
	if first.StatusCode != 183 || headerValue(first, "RSeq") == "" || !hasTag(first, "Require", "100rel") {
		t.Fatalf("core got %d RSeq %q", first.StatusCode, headerValue(first, "RSeq"))
	}
	if again := core.expectResponse(); again.StatusCode != 183 {
		t.Fatalf("core got %d before its PRACK, want the 183 again", again.StatusCode)
	}
	prack := "PRACK " + first.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKpr1\r\n" +
		"Max-Forwards: 70\r\nFrom: " + first.From().Value() + "\r\nTo: " + first.To().Value() + "\r\nCall-ID: rel1\r\nCSeq: 11 PRACK\r\n" +
		"RAck: " + headerValue(first, "RSeq") + " 10 INVITE\r\nContent-Length: 0\r\n\r\n"
	core.send(prack)
	var got200, gotPrackOK bool
	for !got200 || !gotPrackOK {
		res := core.expectResponse()
		switch {
		case res.StatusCode == 200 && cseqMethod(res) == sip.PRACK:
			gotPrackOK = true
		case res.StatusCode == 200 && cseqMethod(res) == sip.INVITE:
			got200 = true
		case res.StatusCode == 183:
		default:
			t.Fatalf("core got %d %s", res.StatusCode, cseqMethod(res))
		}
	}
}
