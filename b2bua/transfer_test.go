package b2bua

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// webReq is an in-dialog request of the browser in call callID, whose 200
// (from the gateway) is ok.
func webReq(t *testing.T, ok *sip.Response, method string, cseq int, extra, body string) *sip.Request {
	t.Helper()
	raw := fmt.Sprintf("%s sip:x@imsgate.invalid SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK%s%d\n"+
		"Max-Forwards: 70\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %d %s\nContact: <sip:a1@x.invalid;transport=ws>\n%sContent-Length: %d\n\n%s",
		method, strings.ToLower(method), cseq, ok.From().Value(), ok.To().Value(), ok.CallID().Value(), cseq, method, extra, len(body), body)
	return parseReq(t, raw)
}

// secondCall places a second browser call on flow f, answered by the core
// with To tag t2; it returns the browser's 200 and the core's INVITE.
func secondCall(t *testing.T, g *Gateway, core *rawCore, f *fakeFlow) (*sip.Response, *sip.Request) {
	t.Helper()
	g.handleWeb(f, webInvite("web-call-2", "inv2", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 200, "OK", "t2", "Contact: <sip:carol@"+core.addr()+">\r\n", coreAnswerSDP))
	core.expect(sip.ACK)
	for {
		if res := f.expectStatus(t); res.StatusCode == 200 && res.CallID().Value() == "web-call-2" {
			g.handleWeb(f, webReq(t, res, "ACK", 1, "", ""))
			return res, inv
		}
	}
}

func firstOK(t *testing.T, f *fakeFlow) *sip.Response {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.out {
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 && res.CallID().Value() == "web-call-1" {
			return res
		}
	}
	t.Fatal("no 200 for the first call")
	return nil
}

// TestBlindReferFromBrowser: the browser's REFER reaches the core in the
// core dialog, its 202 comes back, and the core's NOTIFY progress reaches
// the browser.
func TestBlindReferFromBrowser(t *testing.T) {
	g, core, f := newWebRig(t)
	answeredCall(t, g, core, f)
	ok := firstOK(t, f)
	g.handleWeb(f, webReq(t, ok, "REFER", 5, "Refer-To: <sip:carol@imsgate.test>\nReferred-By: <sip:alice@imsgate.test>\n", ""))
	refer := core.expect(sip.REFER)
	if got := headerValue(refer, "Refer-To"); got != "<sip:carol@imsgate.test>" || tagOf(refer.To().Params) != "t1" {
		t.Fatalf("core REFER Refer-To %q to-tag %q", got, tagOf(refer.To().Params))
	}
	core.send(reply(refer, 202, "Accepted", "", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 202 {
		t.Fatalf("browser got %d, want 202", res.StatusCode)
	}
	n := fmt.Sprintf("NOTIFY %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKn1\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 20 NOTIFY\r\n"+
		"Contact: <sip:bob@%s>\r\nEvent: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n",
		refer.Contact().Address.String(), core.addr(), refer.To().Value(), refer.From().Value(), refer.CallID().Value(), core.addr())
	core.send(n)
	got := f.nextRequest(t)
	if got.Method != sip.NOTIFY || string(got.Body()) != "SIP/2.0 200 OK\r\n" || headerValue(got, "Event") != "refer" {
		t.Fatalf("browser got %s %q", got.Method, got.Body())
	}
	g.handleWeb(f, webReply(got, 200, ""))
	if res := core.expectResponse(); res.StatusCode != 200 {
		t.Fatalf("core's NOTIFY got %d", res.StatusCode)
	}
}

// TestAttendedReferRewritesReplaces: the browser's REFER names its other
// call by the browser's dialog; the core gets that call's core dialog.
func TestAttendedReferRewritesReplaces(t *testing.T) {
	g, core, f := newWebRig(t)
	answeredCall(t, g, core, f)
	ok2, inv2 := secondCall(t, g, core, f)
	ok1 := firstOK(t, f)
	web := "web-call-2;to-tag=" + tagOf(ok2.To().Params) + ";from-tag=f1"
	g.handleWeb(f, webReq(t, ok1, "REFER", 5, "Refer-To: <sip:carol@imsgate.test?Replaces="+url.QueryEscape(web)+">\n", ""))
	refer := core.expect(sip.REFER)
	want := inv2.CallID().Value() + ";to-tag=t2;from-tag=" + tagOf(inv2.From().Params)
	if got := headerValue(refer, "Refer-To"); got != "<sip:carol@imsgate.test?Replaces="+url.QueryEscape(want)+">" {
		t.Fatalf("Refer-To %s\nwant Replaces=%s", got, want)
	}
}

// TestInviteWithReplacesFromCore: the core's INVITE to a call's Contact
// with Replaces naming that call's core dialog reaches the browser with
// Replaces naming the browser's dialog.
func TestInviteWithReplacesFromCore(t *testing.T) {
	g, core, f := newWebRig(t)
	attach(g, f)
	inv, _ := answeredCall(t, g, core, f)
	ok1 := firstOK(t, f)
	r := inv.CallID().Value() + ";to-tag=" + tagOf(inv.From().Params) + ";from-tag=t1"
	raw := "INVITE " + inv.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKrep1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:dave@imsgate.test>;tag=d1\r\nTo: <sip:alice@imsgate.test>\r\nCall-ID: rep-1\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:dave@" + core.addr() + ">\r\nReplaces: " + r + "\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + itoa(len(coreOfferSDP)) + "\r\n\r\n" + coreOfferSDP
	core.sendTo(raw, g.core.udpLocal.String())
	got := f.nextRequest(t)
	want := "web-call-1;to-tag=f1;from-tag=" + tagOf(ok1.To().Params)
	if got.Method != sip.INVITE || headerValue(got, "Replaces") != want {
		t.Fatalf("browser got %s with Replaces %q, want %q", got.Method, headerValue(got, "Replaces"), want)
	}
}

// TestRelayedAnswerAfterBye: the core answers a NOTIFY the browser sent and
// hangs up at once; the BYE may overtake the 200 inside the gateway, and
// the browser still gets the 200, not a 487.
func TestRelayedAnswerAfterBye(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	ok := firstOK(t, f)
	g.handleWeb(f, webReq(t, ok, "NOTIFY", 5, "Event: refer\nSubscription-State: terminated\nContent-Type: message/sipfrag\n", "SIP/2.0 200 OK\r\n"))
	notify := core.expect(sip.NOTIFY)
	core.send(coreInDialog("BYE", inv, ack, core.addr(), 30, ""))
	if res := core.expectResponse(); res.StatusCode != 200 {
		t.Fatalf("BYE got %d", res.StatusCode)
	}
	core.send(reply(notify, 200, "OK", "", "", ""))
	for {
		m := f.nextMsg(t)
		if res, isRes := m.(*sip.Response); isRes && cseqMethod(res) == sip.NOTIFY {
			if res.StatusCode != 200 {
				t.Fatalf("the browser's NOTIFY got %d, want the core's 200", res.StatusCode)
			}
			return
		}
	}
}
