package b2bua

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/mediabridge"
)

// outOfDialog is a browser's request outside a dialog, from the AoR from,
// with extra header lines; an INVITE carries Chrome's offer.
func outOfDialog(t *testing.T, method, callID, from, extra string) *sip.Request {
	t.Helper()
	var body, ctype string
	switch method {
	case "INVITE":
		body, ctype = chromeOfferForTest, "application/sdp"
	case "MESSAGE":
		body, ctype = "hello", "text/plain"
	case "SUBSCRIBE":
		extra += "Event: presence\r\nExpires: 600\r\n"
	case "PUBLISH":
		body, ctype = `<presence entity="`+from+`"/>`, "application/pidf+xml"
		extra += "Event: presence\r\nExpires: 600\r\n"
	}
	raw := method + " sip:bob@imsgate.test SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK" + callID + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <" + from + ">;tag=f" + callID + "\r\nTo: <sip:bob@imsgate.test>\r\n" +
		"Contact: <sip:a1@x.invalid;transport=ws>\r\nCall-ID: " + callID + "\r\nCSeq: 1 " + method + "\r\n" + extra
	if ctype != "" {
		raw += "Content-Type: " + ctype + "\r\n"
	}
	msg, err := sip.ParseMessage([]byte(raw + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// expect403 checks a refusal: 403 with the reason as phrase and Warning.
func expect403(t *testing.T, f *fakeFlow, why refusal) {
	t.Helper()
	res := f.expectStatus(t)
	if res.StatusCode != 403 || res.Reason != why.phrase() {
		t.Fatalf("browser got %d %s, want 403 %s", res.StatusCode, res.Reason, why.phrase())
	}
	if w := res.GetHeader("Warning"); w == nil || w.Value() != `399 imsgate "`+why.phrase()+`"` {
		t.Fatalf("403 must say why in a Warning, got %v", w)
	}
}

// TestPassthroughRefusesUnregistered: until its flow has a registration
// the core accepted, a browser's INVITE, MESSAGE, SUBSCRIBE and PUBLISH get
// 403, nothing reaches the core and no media port is taken; once it has
// one, its call goes through.
func TestPassthroughRefusesUnregistered(t *testing.T) {
	g, core, f := newRawRig(t)
	engine := g.media.(*mediabridge.Engine)
	for _, method := range []string{"INVITE", "MESSAGE", "SUBSCRIBE", "PUBLISH"} {
		t.Run(method, func(t *testing.T) {
			g.handleWeb(f, outOfDialog(t, method, "unreg-"+method, "sip:alice@imsgate.test", ""))
			expect403(t, f, refusalUnregistered)
			if n := engine.PortPairsInUse(); n != 0 {
				t.Fatalf("%d port pairs in use for a refused %s", n, method)
			}
		})
	}
	core.quiet(100 * time.Millisecond)
	if g.Calls() != 0 || g.Refusals()["unregistered"] != 4 {
		t.Fatalf("calls %d, refusals %v; want none and 4 unregistered", g.Calls(), g.Refusals())
	}

	// A REGISTER the core challenges is no registration.
	g.handleWeb(f, parseReq(t, jssipRegister))
	reg := core.expect(sip.REGISTER)
	core.send(reply(reg, 401, "Unauthorized", "r1", "WWW-Authenticate: Digest realm=\"imsgate.test\", nonce=\"n1\"\r\n", ""))
	if res := f.next(t); res.StatusCode != 401 {
		t.Fatalf("register: %d, want the core's 401", res.StatusCode)
	}
	g.handleWeb(f, outOfDialog(t, "INVITE", "challenged", "sip:alice@imsgate.test", ""))
	expect403(t, f, refusalUnregistered)

	registerBrowser(t, g, core, f)
	callToCore(t, g, core, f)
	if n := engine.PortPairsInUse(); n != 1 {
		t.Fatalf("%d port pairs in use for the registered browser's call, want 1", n)
	}
}

// TestPassthroughIdentity: a browser speaks only as an AoR registered on
// its own flow, in From and in P-Preferred-Identity (RFC 3325).
func TestPassthroughIdentity(t *testing.T) {
	g, core, alice := newRawRig(t)
	registerBrowser(t, g, core, alice)
	bob, lurker := newFakeFlow("f-bob"), newFakeFlow("f-lurker")
	registerAs(t, g, core, bob, "bob")
	for i, tc := range []struct {
		name string
		flow *fakeFlow
		from string
		ppi  string // P-Preferred-Identity value, if any
		want refusal
	}{
		{"own AoR", alice, "sip:alice@imsgate.test", "", refusalNone},
		{"own AoR, sips, host in capitals, parameters", alice, "sips:alice@IMSGATE.test;transport=ws", "", refusalNone},
		{"own AoR as P-Preferred-Identity", alice, "sip:alice@imsgate.test", `"Alice" <sip:alice@imsgate.test>`, refusalNone},
		{"another flow's AoR", bob, "sip:alice@imsgate.test", "", refusalFrom},
		{"another user in another case", alice, "sip:Alice@imsgate.test", "", refusalFrom},
		{"another domain", alice, "sip:alice@elsewhere.test", "", refusalFrom},
		{"a tel URI", alice, "tel:+15551234", "", refusalFrom},
		{"an unregistered flow with a registered AoR", lurker, "sip:alice@imsgate.test", "", refusalUnregistered},
		{"P-Preferred-Identity of another AoR", alice, "sip:alice@imsgate.test", "<sip:bob@imsgate.test>", refusalPreferred},
		{"P-Preferred-Identity listing another AoR", alice, "sip:alice@imsgate.test",
			`<sip:alice@imsgate.test>, "Bob, B." <sip:bob@imsgate.test>`, refusalPreferred},
		{"P-Preferred-Identity unparsable", alice, "sip:alice@imsgate.test", "<>", refusalPreferred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.ppi != "" {
				extra = "P-Preferred-Identity: " + tc.ppi + "\r\n"
			}
			g.handleWeb(tc.flow, outOfDialog(t, "MESSAGE", "id-"+itoa(i), tc.from, extra))
			if tc.want != refusalNone {
				expect403(t, tc.flow, tc.want)
				return
			}
			out := core.expect(sip.MESSAGE)
			core.send(reply(out, 200, "OK", "c1", "", ""))
			if res := tc.flow.expectStatus(t); res.StatusCode != 200 {
				t.Fatalf("browser got %d, want the core's 200", res.StatusCode)
			}
		})
	}
	core.quiet(100 * time.Millisecond)
	got := g.Refusals()
	if got["from_not_registered"] != 4 || got["preferred_identity_not_registered"] != 3 || got["unregistered"] != 1 {
		t.Fatalf("refusals %v", got)
	}
}

// TestPassthroughRegistrationExpired: once a flow's registration expires
// (the sweep forgets it only later) its new requests get 403 again, while
// its call goes on.
func TestPassthroughRegistrationExpired(t *testing.T) {
	g, core, f := newRawRig(t)
	b := registerBrowser(t, g, core, f)
	answeredCall(t, g, core, f)
	b.mu.Lock()
	b.expires = time.Now().Add(-time.Second)
	b.mu.Unlock()

	g.handleWeb(f, outOfDialog(t, "INVITE", "after-expiry", "sip:alice@imsgate.test", ""))
	expect403(t, f, refusalUnregistered)
	g.handleWeb(f, outOfDialog(t, "MESSAGE", "msg-after-expiry", "sip:alice@imsgate.test", ""))
	expect403(t, f, refusalUnregistered)
	if n := g.media.(*mediabridge.Engine).PortPairsInUse(); n != 1 {
		t.Fatalf("%d port pairs in use, want the call's only", n)
	}

	// In the call's dialog the browser is still heard.
	g.handleWeb(f, webRequest(t, f, "INFO", 2, ""))
	info := core.expect(sip.INFO)
	core.send(reply(info, 200, "OK", "", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 200 || cseqMethod(res) != sip.INFO {
		t.Fatalf("browser's INFO got %d %s", res.StatusCode, cseqMethod(res))
	}
	g.handleWeb(f, webRequest(t, f, "BYE", 3, ""))
	bye := core.expect(sip.BYE)
	core.send(reply(bye, 200, "OK", "", "", ""))
	waitCalls(t, g, 0)
}

// TestRefusalLogThrottles: a flow's first refusal of a reason in the window
// is logged at Info, the rest at Debug; every one is counted.
func TestRefusalLogThrottles(t *testing.T) {
	var l refusalLog
	t0 := time.Now()
	for _, step := range []struct {
		flow string
		why  refusal
		at   time.Duration
		info bool
	}{
		{"f1", refusalUnregistered, 0, true},
		{"f1", refusalUnregistered, time.Second, false},
		{"f1", refusalFrom, time.Second, true},
		{"f2", refusalUnregistered, 2 * time.Second, true},
		{"f1", refusalUnregistered, refusalLogWindow - time.Second, false},
		{"f1", refusalUnregistered, refusalLogWindow, true},
	} {
		if got := l.note(step.flow, step.why, t0.Add(step.at)); got != step.info {
			t.Fatalf("%s %s at %v: info %v, want %v", step.flow, step.why, step.at, got, step.info)
		}
	}
	if n := l.counts.Snapshot(); n["unregistered"] != 5 || n["from_not_registered"] != 1 {
		t.Fatalf("counts %v", n)
	}
	l.forget("f1")
	l.sweep(t0.Add(2*time.Second + refusalLogWindow))
	if len(l.logged) != 0 {
		t.Fatalf("entries left after forget and sweep: %v", l.logged)
	}
}

func TestSplitAddresses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"<sip:a@b>", []string{"<sip:a@b>"}},
		{`"A, B" <sip:a@b>, tel:+1555`, []string{`"A, B" <sip:a@b>`, "tel:+1555"}},
		{`"A \", B" <sip:a@b;x=1,2>,<sip:c@d>`, []string{`"A \", B" <sip:a@b;x=1,2>`, "<sip:c@d>"}},
		{"", []string{""}},
	} {
		got := splitAddresses(tc.in)
		if len(got) != len(tc.want) {
			t.Fatalf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%q: got %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}
