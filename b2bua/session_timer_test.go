package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// callToCoreWith is answeredCall with extra header lines on the core's 200.
func callToCoreWith(t *testing.T, g *Gateway, core *rawCore, f *fakeFlow, extra string) *sip.Request {
	t.Helper()
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	if got := inv.GetHeader("Session-Expires"); got == nil || got.Value() != "1800" || !listsTimer(inv) {
		t.Fatalf("our INVITE must ask for a session timer (Supported: timer, Session-Expires: 1800), got %v", got)
	}
	core.send(reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n"+extra, coreAnswerSDP))
	core.expect(sip.ACK)
	for f.expectStatus(t).StatusCode != 200 {
	}
	g.handleWeb(f, webRequest(t, f, "ACK", 1, ""))
	return inv
}

// TestWeRefreshTheCoreSession: the core's 200 makes us the refresher; we
// refresh at half the interval by UPDATE when it allows UPDATE, by a
// re-INVITE repeating our description otherwise. The browser hears nothing.
func TestWeRefreshTheCoreSession(t *testing.T) {
	for _, tc := range []struct {
		name, allow string
		method      sip.RequestMethod
	}{
		{"UPDATE allowed", "Allow: INVITE, ACK, BYE, UPDATE\r\n", sip.UPDATE},
		{"no UPDATE", "Allow: INVITE, ACK, BYE\r\n", sip.INVITE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, core, f := newWebRig(t)
			callToCoreWith(t, g, core, f, tc.allow+"Session-Expires: 2;refresher=uac\r\nRequire: timer\r\n")
			var last []byte
			for range 2 {
				r := core.expect(tc.method)
				if se := r.GetHeader("Session-Expires"); se == nil || !strings.HasPrefix(se.Value(), "2;refresher=uac") {
					t.Fatalf("refresh Session-Expires %v", se)
				}
				if tc.method == sip.INVITE && last != nil && string(r.Body()) != string(last) {
					t.Fatalf("a second refresh re-INVITE must repeat the first (same o= version):\n%s\nafter\n%s", r.Body(), last)
				}
				last = r.Body()
				core.send(reply(r, 200, "OK", "", "Contact: <sip:bob@"+core.addr()+">\r\nSession-Expires: 2;refresher=uac\r\n", map[bool]string{true: coreAnswerSDP}[tc.method == sip.INVITE]))
				if tc.method == sip.INVITE {
					core.expect(sip.ACK)
				}
			}
			select {
			case m := <-f.got:
				t.Fatalf("the browser heard of a refresh: %s", startLine(m))
			default:
			}
		})
	}
}

// TestCoreStopsRefreshing: the core is the refresher and goes quiet; the
// call ends before the interval runs out, BYE on both legs.
func TestCoreStopsRefreshing(t *testing.T) {
	g, core, f := newWebRig(t)
	callToCoreWith(t, g, core, f, "Session-Expires: 3;refresher=uas\r\n")
	start := time.Now()
	core.expect(sip.BYE)
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("BYE after %v, want it before the 3 s interval ran out", waited)
	}
	if r := f.nextRequest(t); r.Method != sip.BYE {
		t.Fatalf("browser got %s, want BYE", r.Method)
	}
}

// TestCoreRefreshAnswered: the core's refresh keeps its interval alive and
// our 200 carries Session-Expires and Require: timer; one below our Min-SE
// gets 422 with Min-SE.
func TestCoreRefreshAnswered(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	up := strings.Replace(coreInDialog("UPDATE", inv, ack, core.addr(), 10, ""), "Content-Length", "Supported: timer\r\nSession-Expires: 600;refresher=uac\r\nContent-Length", 1)
	core.send(up)
	res := core.expectResponse()
	if se := res.GetHeader("Session-Expires"); res.StatusCode != 200 || se == nil || se.Value() != "600;refresher=uac" || res.GetHeader("Require") == nil {
		t.Fatalf("refresh got %d, Session-Expires %v", res.StatusCode, se)
	}
	short := strings.Replace(coreInDialog("UPDATE", inv, ack, core.addr(), 11, ""), "Content-Length", "Session-Expires: 30\r\nContent-Length", 1)
	core.send(short)
	res = core.expectResponse()
	if res.StatusCode != 422 || res.GetHeader("Min-SE") == nil || res.GetHeader("Min-SE").Value() != "90" {
		t.Fatalf("a 30 s interval got %d (Min-SE %v), want 422 with Min-SE: 90", res.StatusCode, res.GetHeader("Min-SE"))
	}
}

// TestRetryAfter422: the core's 422 to our INVITE makes us ask again with
// its Min-SE, CSeq one higher, and the call goes on.
func TestRetryAfter422(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 422, "Session Interval Too Small", "t0", "Min-SE: 3600\r\n", ""))
	core.expect(sip.ACK)
	again := core.expect(sip.INVITE)
	if se := again.GetHeader("Session-Expires"); se == nil || se.Value() != "3600" || cseqNo(again) != cseqNo(inv)+1 {
		t.Fatalf("retry Session-Expires %v CSeq %d", se, cseqNo(again))
	}
	core.send(reply(again, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", coreAnswerSDP))
	core.expect(sip.ACK)
	for f.expectStatus(t).StatusCode != 200 {
	}
}
