package b2bua

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestMessageBothWays: a browser's MESSAGE reaches the core with its body
// and credentials and the core's status comes back; the core's MESSAGE to
// the browser's registered Contact reaches that browser, whose 200 reaches
// the core.
func TestMessageBothWays(t *testing.T) {
	g, core, _ := newRawRig(t)
	f := newFakeFlow("f1")
	attach(g, f)
	b := registerBrowser(t, g, core, f)

	body := "héllo from the browser"
	g.handleWeb(f, parseReq(t, "MESSAGE sip:+15551234@imsgate.test SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKm1\n"+
		"Max-Forwards: 70\nFrom: <sip:alice@imsgate.test>;tag=a1\nTo: <sip:+15551234@imsgate.test>\nCall-ID: msg-1\nCSeq: 1 MESSAGE\n"+
		"Authorization: Digest username=\"alice\"\nContent-Type: text/plain;charset=UTF-8\nContent-Length: "+itoa(len(body))+"\n\n"+body))
	out := core.expect(sip.MESSAGE)
	if string(out.Body()) != body || out.GetHeader("Authorization") == nil || out.CallID().Value() == "msg-1" {
		t.Fatalf("core got\n%s", out)
	}
	core.send(reply(out, 202, "Accepted", "c1", "", ""))
	if res := f.next(t); res.StatusCode != 202 || cseqMethod(res) != sip.MESSAGE {
		t.Fatalf("browser got %d %s, want the core's 202", res.StatusCode, cseqMethod(res))
	}

	in := "MESSAGE sip:" + b.token + "@imsgate.test SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKcm1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:carol@imsgate.test>;tag=c9\r\nTo: <sip:alice@imsgate.test>\r\nCall-ID: cmsg-1\r\nCSeq: 7 MESSAGE\r\n" +
		"Content-Type: message/cpim\r\nContent-Length: 5\r\n\r\nhello"
	core.sendTo(in, g.core.udpLocal.String())
	toWeb := f.nextRequest(t)
	if toWeb.Method != sip.MESSAGE || string(toWeb.Body()) != "hello" || toWeb.Recipient.Host != "imsgate.invalid" && toWeb.Recipient.User == b.token {
		t.Fatalf("browser got %s %q to %s", toWeb.Method, toWeb.Body(), toWeb.Recipient.String())
	}
	g.handleWeb(f, webReply(toWeb, 200, ""))
	if res := core.expectResponse(); res.StatusCode != 200 || cseqMethod(res) != sip.MESSAGE {
		t.Fatalf("core got %d %s, want the browser's 200", res.StatusCode, cseqMethod(res))
	}
}
