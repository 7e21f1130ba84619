package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/mediabridge"
)

// TestCallSurvivesReconnect: the browser's WebSocket drops in a call; the
// core hears nothing (no BYE, no de-registration); the browser comes back
// on a new connection and registers the same Contact; the core's INFO
// reaches it there, and its BYE reaches the core.
func TestCallSurvivesReconnect(t *testing.T) {
	g, core, _ := newRawRig(t)
	f := callFromCore(t, g, core, "rc1", "")
	ok := core.expectResponse()
	core.send(ackFor(ok, core.addr()))
	g.flowClosed(f.name)
	core.quiet(300 * time.Millisecond) // no BYE, no REGISTER with expires 0
	if g.Calls() != 1 || g.Bindings() != 1 {
		t.Fatalf("calls %d bindings %d after the drop, want both kept", g.Calls(), g.Bindings())
	}

	f2 := newFakeFlow("f2")
	attach(g, f2)
	// A REGISTER the core does not accept takes nothing over.
	g.handleWeb(f2, parseReq(t, deviceRegister("alice", "f1")))
	reg := core.expect(sip.REGISTER)
	core.send(reply(reg, 401, "Unauthorized", "r1", "WWW-Authenticate: Digest realm=\"imsgate.test\", nonce=\"n1\"\r\n", ""))
	if res := f2.next(t); res.StatusCode != 401 {
		t.Fatalf("register on the new connection: %d, want the core's 401", res.StatusCode)
	}
	if g.callByWeb("f2", c1CallID(t, g)) != nil {
		t.Fatal("a challenged REGISTER took the call over")
	}
	// Nor is the new connection registered yet: it may not speak as alice.
	g.handleWeb(f2, outOfDialog(t, "MESSAGE", "rc-msg-1", "sip:alice@imsgate.test", ""))
	expect403(t, f2, refusalUnregistered)
	g.handleWeb(f2, parseReq(t, deviceRegister("alice", "f1")))
	reg = core.expect(sip.REGISTER)
	if !strings.Contains(reg.Contact().Value(), "expires") && reg.GetHeader("Expires") != nil && reg.GetHeader("Expires").Value() == "0" {
		t.Fatal("the reconnecting browser's REGISTER must refresh, not remove")
	}
	core.send(reply(reg, 200, "OK", "r1", "Contact: "+reg.Contact().Value()+";expires=600\r\n", ""))
	if res := f2.next(t); res.StatusCode != 200 {
		t.Fatalf("register on the new connection: %d", res.StatusCode)
	}
	if g.Bindings() != 1 {
		t.Fatalf("bindings %d, want the one taken over", g.Bindings())
	}
	// The binding, and alice's identity with it, moved to the new flow.
	g.handleWeb(f2, outOfDialog(t, "MESSAGE", "rc-msg-2", "sip:alice@imsgate.test", ""))
	msg := core.expect(sip.MESSAGE)
	core.send(reply(msg, 200, "OK", "c1", "", ""))
	if res := f2.expectStatus(t); res.StatusCode != 200 {
		t.Fatalf("MESSAGE after the takeover got %d, want the core's 200", res.StatusCode)
	}

	info := "INFO " + ok.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKinfo1\r\n" +
		"Max-Forwards: 70\r\nFrom: " + ok.From().Value() + "\r\nTo: " + ok.To().Value() + "\r\nCall-ID: rc1\r\nCSeq: 11 INFO\r\n" +
		"Content-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=5\r\n"
	core.send(info)
	got := f2.nextRequest(t)
	if got.Method != sip.INFO {
		t.Fatalf("new connection got %s, want the core's INFO", got.Method)
	}
	g.handleWeb(f2, webReply(got, 200, ""))
	if res := core.expectResponse(); res.StatusCode != 200 {
		t.Fatalf("core's INFO got %d", res.StatusCode)
	}

	bye := "BYE sip:x@imsgate.invalid SIP/2.0\nVia: SIP/2.0/WSS y.invalid;branch=z9hG4bKbye2\nMax-Forwards: 70\n" +
		"From: " + got.To().Value() + "\nTo: " + got.From().Value() + "\nCall-ID: " + got.CallID().Value() + "\nCSeq: 5 BYE\nContent-Length: 0\n\n"
	g.handleWeb(f2, parseReq(t, bye))
	core.expect(sip.BYE)
}

// TestReconnectBeforeOldConnectionCloses: the browser comes back on a new
// connection while the gateway still holds its old one open (a NAT that
// forgot the old one sends no FIN). Its REGISTER of the same device, once
// the core accepts it, takes the binding and the call over; the old
// connection is closed, and its close ends nothing.
func TestReconnectBeforeOldConnectionCloses(t *testing.T) {
	g, core, f, ok := answeredFromCore(t, "rc3")

	f2 := newFakeFlow("f2")
	attach(g, f, f2) // both open
	registerOpenBeside(t, g, core, f2, "f1")
	select {
	case why := <-f.closed:
		if why != "1000 "+replacedClose {
			t.Fatalf("old connection closed with %q", why)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the old connection was left open")
	}
	g.flowClosed(f.name)               // what sipws reports once it has closed
	core.quiet(200 * time.Millisecond) // no BYE, no de-registration
	if g.Calls() != 1 || g.Bindings() != 1 {
		t.Fatalf("calls %d bindings %d, want the call and its binding kept", g.Calls(), g.Bindings())
	}
	info := "INFO " + ok.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKinfo3\r\n" +
		"Max-Forwards: 70\r\nFrom: " + ok.From().Value() + "\r\nTo: " + ok.To().Value() + "\r\nCall-ID: rc3\r\nCSeq: 11 INFO\r\n" +
		"Content-Length: 0\r\n\r\n"
	core.send(info)
	if got := f2.nextRequest(t); got.Method != sip.INFO {
		t.Fatalf("new connection got %s, want the core's INFO", got.Method)
	}
}

// TestOtherDeviceTakesNothing: another device of the same AoR (its own
// Contact and +sip.instance) registering beside an open connection takes
// neither its binding nor its calls.
func TestOtherDeviceTakesNothing(t *testing.T) {
	g, core, f, _ := answeredFromCore(t, "rc4")
	f2 := newFakeFlow("f2")
	attach(g, f, f2)
	registerOpenBeside(t, g, core, f2, "f2")
	select {
	case why := <-f.closed:
		t.Fatalf("first device's connection closed: %q", why)
	case <-time.After(200 * time.Millisecond):
	}
	if g.Bindings() != 2 || g.callByWeb(f.name, c1CallID(t, g)) == nil {
		t.Fatalf("bindings %d, call on the first device %v", g.Bindings(), g.callByWeb(f.name, c1CallID(t, g)) != nil)
	}
}

// answeredFromCore is a call from the core to alice on f1, answered and ACKed.
func answeredFromCore(t *testing.T, callID string) (*Gateway, *rawCore, *fakeFlow, *sip.Response) {
	t.Helper()
	g, core, _ := newRawRig(t)
	f := callFromCore(t, g, core, callID, "")
	ok := core.expectResponse()
	core.send(ackFor(ok, core.addr()))
	return g, core, f, ok
}

// registerOpenBeside registers device's alice over f2, the core accepting.
func registerOpenBeside(t *testing.T, g *Gateway, core *rawCore, f2 *fakeFlow, device string) {
	t.Helper()
	g.handleWeb(f2, parseReq(t, deviceRegister("alice", device)))
	reg := core.expect(sip.REGISTER)
	core.send(reply(reg, 200, "OK", "r1", "Contact: "+reg.Contact().Value()+";expires=600\r\n", ""))
	if res := f2.next(t); res.StatusCode != 200 {
		t.Fatalf("register of device %s on the new connection: %d", device, res.StatusCode)
	}
}

// TestCallEndsAfterGrace: the browser does not come back; past the grace
// the core gets BYE and the binding is removed at the core.
func TestCallEndsAfterGrace(t *testing.T) {
	noLeaks(t)
	core := newRawCore(t)
	g := newGatewayTo(t, core, func(cfg *configs.Config) { cfg.Calls.ReconnectGrace = 300 * time.Millisecond })
	f := callFromCore(t, g, core, "rc2", "")
	ok := core.expectResponse()
	core.send(ackFor(ok, core.addr()))
	start := time.Now()
	g.flowClosed(f.name)
	// The BYE and the de-registration go their own ways: either first.
	var bye, reg *sip.Request
	for bye == nil || reg == nil {
		m, ok := core.next(5 * time.Second)
		if !ok {
			t.Fatalf("BYE %v, REGISTER %v", bye != nil, reg != nil)
		}
		r, isReq := m.msg.(*sip.Request)
		switch {
		case !isReq:
		case r.Method == sip.BYE:
			bye = r
		case r.Method == sip.REGISTER:
			reg = r
			core.send(reply(r, 200, "OK", "r1", "", ""))
		}
		if time.Since(start) < 250*time.Millisecond {
			t.Fatalf("%s after %v, before the grace ran out", r.Method, time.Since(start))
		}
	}
	if e := reg.GetHeader("Expires"); (e == nil || e.Value() != "0") && !strings.Contains(reg.Contact().Value(), "expires=0") {
		t.Fatalf("want the binding removed at the core, got\n%s", reg)
	}
	waitCalls(t, g, 0)
	if g.Bindings() != 0 {
		t.Fatalf("bindings %d left", g.Bindings())
	}
}

// TestConsentLossEndsCall: the browser's consent checks stop (its address
// went silent for 30 s): the core gets BYE. While the browser is
// reconnecting the same loss does not end the call; once back, it has one
// consent period to be heard again.
func TestConsentLossEndsCall(t *testing.T) {
	g, core, f := newWebRig(t)
	g.consentPeriod = 300 * time.Millisecond
	answeredCall(t, g, core, f)
	c := g.callByWeb(f.name, "web-call-1")
	g.flowClosed(f.name)
	c.enqueue(event{kind: evMedia, media: mediabridge.Event{Kind: mediabridge.EventConsentLost}})
	core.quiet(200 * time.Millisecond)
	c.enqueue(event{kind: evFlowMoved, flow: newFakeFlow("f2")})
	start := time.Now()
	// The raw browser never sends ICE checks. (The binding's removal at the
	// core, once the call is gone, may overtake the BYE.)
	expectPast(t, core, sip.BYE)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("BYE %v after the move, before the consent period", waited)
	}
}

// c1CallID is the browser-side Call-ID of the one call in the gateway.
func c1CallID(t *testing.T, g *Gateway) string {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.calls {
		return c.web.dlg.callID
	}
	t.Fatal("no call")
	return ""
}
