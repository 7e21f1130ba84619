package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestPresenceSubscribeFromWeb: a browser's SUBSCRIBE reaches the core as
// a dialog of ours; the core's 200 and NOTIFY reach the browser over its
// flow and the browser's 200 the core; a refresh goes in the core's dialog
// to its Contact; the flow closing ends the subscription at the core.
func TestPresenceSubscribeFromWeb(t *testing.T) {
	g, core, f := newWebRig(t)
	attach(g, f)

	g.handleWeb(f, parseReq(t, "SUBSCRIBE sip:bob@imsgate.test SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKs1\n"+
		"Max-Forwards: 70\nFrom: <sip:alice@imsgate.test>;tag=a1\nTo: <sip:bob@imsgate.test>\nCall-ID: sub-1\nCSeq: 1 SUBSCRIBE\n"+
		"Contact: <sip:q8k2m4@8fj3k2l1.invalid;transport=ws>\nEvent: presence\nExpires: 600\nAccept: application/pidf+xml\n"+
		"Authorization: Digest username=\"alice\"\nContent-Length: 0\n\n"))
	out := core.expect(sip.SUBSCRIBE)
	if out.CallID().Value() == "sub-1" || out.GetHeader("Event").Value() != "presence" || out.GetHeader("Authorization") == nil ||
		out.Contact() == nil || out.Contact().Address.Host != g.core.host || out.Contact().Address.Port != g.core.port {
		t.Fatalf("core got\n%s", out)
	}
	coreContact := "Contact: <sip:pres@" + core.addr() + ">\r\n"
	core.send(reply(out, 200, "OK", "ct1", "Expires: 300\r\n"+coreContact, ""))
	ok := f.expectStatus(t)
	if ok.StatusCode != 200 || ok.GetHeader("Expires").Value() != "300" || tagOf(ok.To().Params) == "" ||
		ok.Contact() == nil || ok.Contact().Address.Host != "imsgate.invalid" {
		t.Fatalf("browser got\n%s", ok)
	}

	pidf := `<presence entity="sip:bob@imsgate.test"/>`
	core.send("NOTIFY " + out.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKn1\r\n" +
		"Max-Forwards: 70\r\nFrom: " + out.To().Value() + ";tag=ct1\r\nTo: " + out.From().Value() + "\r\nCall-ID: " + out.CallID().Value() +
		"\r\nCSeq: 1 NOTIFY\r\n" + coreContact + "Event: presence\r\nSubscription-State: active;expires=300\r\n" +
		"Content-Type: application/pidf+xml\r\nContent-Length: " + itoa(len(pidf)) + "\r\n\r\n" + pidf)
	notify := f.nextRequest(t)
	if notify.Method != sip.NOTIFY || notify.CallID().Value() != "sub-1" || tagOf(notify.To().Params) != "a1" ||
		tagOf(notify.From().Params) != tagOf(ok.To().Params) || string(notify.Body()) != pidf ||
		notify.Recipient.Host != "8fj3k2l1.invalid" {
		t.Fatalf("browser got\n%s", notify)
	}
	g.handleWeb(f, webReply(notify, 200, ""))
	if res := core.expectFinal(1, sip.NOTIFY); res.StatusCode != 200 {
		t.Fatalf("core got %d for its NOTIFY", res.StatusCode)
	}

	g.handleWeb(f, parseReq(t, "SUBSCRIBE "+ok.Contact().Address.String()+" SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKs2\n"+
		"Max-Forwards: 70\nFrom: <sip:alice@imsgate.test>;tag=a1\nTo: "+ok.To().Value()+"\nCall-ID: sub-1\nCSeq: 2 SUBSCRIBE\n"+
		"Contact: <sip:q8k2m4@8fj3k2l1.invalid;transport=ws>\nEvent: presence\nExpires: 300\nContent-Length: 0\n\n"))
	refresh := core.expect(sip.SUBSCRIBE)
	if refresh.Recipient.User != "pres" || tagOf(refresh.To().Params) != "ct1" || refresh.CallID().Value() != out.CallID().Value() ||
		refresh.CSeq().SeqNo != 2 {
		t.Fatalf("refresh at the core\n%s", refresh)
	}
	core.send(reply(refresh, 200, "OK", "", "Expires: 300\r\n"+coreContact, ""))
	if res := f.expectStatus(t); res.StatusCode != 200 || cseqMethod(res) != sip.SUBSCRIBE {
		t.Fatalf("browser got %d for its refresh", res.StatusCode)
	}

	g.flowClosed(f.Flow())
	end := expectPast(t, core, sip.SUBSCRIBE) // past the binding's removal (REGISTER)
	if end.GetHeader("Expires").Value() != "0" || tagOf(end.To().Params) != "ct1" || end.CSeq().SeqNo != 3 {
		t.Fatalf("at the flow's close the core got\n%s", end)
	}
	core.send(reply(end, 200, "OK", "", "Expires: 0\r\n", ""))
}

// TestPresenceSubscribeFromCore: the core's SUBSCRIBE to a registered
// browser reaches it over its flow; the browser's NOTIFY reaches the core
// in the core's dialog, at the core's Contact.
func TestPresenceSubscribeFromCore(t *testing.T) {
	g, core, f := newRawRig(t)
	attach(g, f)
	b := registerBrowser(t, g, core, f)

	core.sendTo("SUBSCRIBE sip:"+b.token+"@imsgate.test SIP/2.0\r\nVia: SIP/2.0/UDP "+core.addr()+";branch=z9hG4bKcs1\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:carol@imsgate.test>;tag=c1\r\nTo: <sip:alice@imsgate.test>\r\nCall-ID: csub-1\r\n"+
		"CSeq: 5 SUBSCRIBE\r\nContact: <sip:carol@"+core.addr()+">\r\nEvent: dialog\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
		g.core.udpLocal.String())
	sub := f.nextRequest(t)
	if sub.Method != sip.SUBSCRIBE || sub.CallID().Value() == "csub-1" || sub.Recipient.Host != "8fj3k2l1.invalid" {
		t.Fatalf("browser got\n%s", sub)
	}
	ok := webReply(sub, 200, "")
	ok.AppendHeader(sip.NewHeader("Expires", "600"))
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:q8k2m4@8fj3k2l1.invalid;transport=ws>"))
	g.handleWeb(f, ok)
	res := finalPast(t, core, 5, sip.SUBSCRIBE)
	if res.StatusCode != 200 || tagOf(res.To().Params) == "" || res.Contact() == nil || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("core got\n%s", res)
	}

	g.handleWeb(f, parseReq(t, "NOTIFY "+sub.Contact().Address.String()+" SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKbn1\n"+
		"Max-Forwards: 70\nFrom: "+ok.To().Value()+"\nTo: "+sub.From().Value()+"\nCall-ID: "+sub.CallID().Value()+"\nCSeq: 1 NOTIFY\n"+
		"Contact: <sip:q8k2m4@8fj3k2l1.invalid;transport=ws>\nEvent: dialog\nSubscription-State: active;expires=600\n"+
		"Content-Type: application/dialog-info+xml\nContent-Length: 4\n\n<di>"))
	notify := expectPast(t, core, sip.NOTIFY)
	if notify.CallID().Value() != "csub-1" || tagOf(notify.To().Params) != "c1" || notify.Recipient.User != "carol" ||
		tagOf(notify.From().Params) != tagOf(res.To().Params) || string(notify.Body()) != "<di>" {
		t.Fatalf("core got\n%s", notify)
	}
	core.send(reply(notify, 200, "OK", "", "", ""))
	if got := f.expectStatus(t); got.StatusCode != 200 || cseqMethod(got) != sip.NOTIFY {
		t.Fatalf("browser got %d for its NOTIFY", got.StatusCode)
	}
}

// TestPresencePublishAndMWI: a PUBLISH round trip keeps the core's entity
// tag; the core's message-summary NOTIFY outside a dialog reaches the
// registered browser and its 200 the core.
func TestPresencePublishAndMWI(t *testing.T) {
	g, core, f := newRawRig(t)
	attach(g, f)
	b := registerBrowser(t, g, core, f)

	pidf := `<presence entity="sip:alice@imsgate.test"/>`
	g.handleWeb(f, parseReq(t, "PUBLISH sip:alice@imsgate.test SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKp1\n"+
		"Max-Forwards: 70\nFrom: <sip:alice@imsgate.test>;tag=a1\nTo: <sip:alice@imsgate.test>\nCall-ID: pub-1\nCSeq: 1 PUBLISH\n"+
		"Event: presence\nExpires: 3600\nContent-Type: application/pidf+xml\nContent-Length: "+itoa(len(pidf))+"\n\n"+pidf))
	pub := expectPast(t, core, sip.PUBLISH)
	if string(pub.Body()) != pidf || pub.CallID().Value() == "pub-1" || pub.GetHeader("Event").Value() != "presence" {
		t.Fatalf("core got\n%s", pub)
	}
	core.send(reply(pub, 200, "OK", "ep1", "SIP-ETag: e1\r\nExpires: 1800\r\n", ""))
	if res := f.expectStatus(t); res.StatusCode != 200 || res.GetHeader("SIP-ETag").Value() != "e1" || res.GetHeader("Expires").Value() != "1800" {
		t.Fatalf("browser got\n%s", res)
	}

	mwi := "Messages-Waiting: yes\r\nVoice-Message: 1/3 (0/0)\r\n"
	core.sendTo("NOTIFY sip:"+b.token+"@imsgate.test SIP/2.0\r\nVia: SIP/2.0/UDP "+core.addr()+";branch=z9hG4bKmwi1\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:vm@imsgate.test>;tag=v1\r\nTo: <sip:alice@imsgate.test>\r\nCall-ID: mwi-1\r\nCSeq: 3 NOTIFY\r\n"+
		"Event: message-summary\r\nSubscription-State: active\r\nContent-Type: application/simple-message-summary\r\n"+
		"Content-Length: "+itoa(len(mwi))+"\r\n\r\n"+mwi, g.core.udpLocal.String())
	toWeb := f.nextRequest(t)
	if toWeb.Method != sip.NOTIFY || string(toWeb.Body()) != mwi || !strings.HasPrefix(toWeb.GetHeader("Event").Value(), "message-summary") {
		t.Fatalf("browser got\n%s", toWeb)
	}
	g.handleWeb(f, webReply(toWeb, 200, ""))
	if res := finalPast(t, core, 3, sip.NOTIFY); res.StatusCode != 200 {
		t.Fatalf("core got %d for its NOTIFY", res.StatusCode)
	}
}

// nextPast returns the core's next message past the REGISTER
// retransmissions that registering may leave behind (T1 is 20 ms here: the
// gateway may resend before the core's 200 reaches it).
func nextPast(t *testing.T, core *rawCore) sip.Message {
	t.Helper()
	for {
		m, ok := core.next(5 * time.Second)
		if !ok {
			t.Fatal("core: nothing arrived")
		}
		if req, isReq := m.msg.(*sip.Request); !isReq || req.Method != sip.REGISTER {
			return m.msg
		}
	}
}

// expectPast returns the core's next request, of a method.
func expectPast(t *testing.T, core *rawCore, method sip.RequestMethod) *sip.Request {
	t.Helper()
	req, ok := nextPast(t, core).(*sip.Request)
	if !ok || req.Method != method {
		t.Fatalf("core: got %v, want %s", req, method)
	}
	return req
}

// finalPast returns the core's final response to its request with this CSeq.
func finalPast(t *testing.T, core *rawCore, seq uint32, method sip.RequestMethod) *sip.Response {
	t.Helper()
	for {
		res, ok := nextPast(t, core).(*sip.Response)
		if !ok {
			t.Fatalf("core: got a request, want the response to %s", method)
		}
		if n, m := cseqOf(res); n == seq && m == method && res.StatusCode >= 200 {
			return res
		}
	}
}
