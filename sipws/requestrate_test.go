package sipws

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

func optionsMsg(callID string) string {
	return strings.NewReplacer("REGISTER sip:", "OPTIONS sip:", "CSeq: 1 REGISTER", "CSeq: 1 OPTIONS",
		"aiuy7k9njasd", callID).Replace(registerMsg)
}

func TestRequestRateLimit(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	ack := strings.NewReplacer("REGISTER sip:", "ACK sip:", "CSeq: 1 REGISTER", "CSeq: 1 ACK").Replace(registerMsg)
	tests := []struct {
		name        string
		frame       string
		wantLimited bool
		want        frameAction
		wantStatus  int
	}{
		{name: "request", frame: optionsMsg("x"), wantLimited: true, want: actionReject, wantStatus: 503},
		{name: "ack dropped", frame: ack, wantLimited: true, want: actionDrop},
		{name: "garbage dropped", frame: "hello, world", wantLimited: true, want: actionDrop},
		{name: "response not limited", frame: okResponse},
		{name: "keepalive not limited", frame: "\r\n\r\n"},
		{name: "pong not limited", frame: "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := requestRate{lim: rate.NewLimiter(0.5, 1)}
			rt.lim.AllowN(t0, 1) // spend the only token
			res, limited := rt.limit([]byte(tt.frame), t0)
			if limited != tt.wantLimited {
				t.Fatalf("limited = %v, want %v", limited, tt.wantLimited)
			}
			if !limited {
				return
			}
			if res.action != tt.want || res.refusal != refusalRequestRate {
				t.Fatalf("action %v refusal %v, want %v request_rate", res.action, res.refusal, tt.want)
			}
			if tt.wantStatus == 0 {
				return
			}
			resp := parseReply(t, res.reply)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			// One token takes 2 s at 0.5 per second.
			if h := resp.GetHeader("Retry-After"); h == nil || h.Value() != "2" {
				t.Errorf("Retry-After = %v, want 2", h)
			}
		})
	}
}

func TestRequestRateStrikes(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var rt requestRate
	for i := 1; i < rateStrikes; i++ {
		if rt.strike(t0.Add(time.Duration(i) * 100 * time.Millisecond)) {
			t.Fatalf("closed at refusal %d, want %d", i, rateStrikes)
		}
	}
	if !rt.strike(t0.Add(rateStrikeWindow - time.Millisecond)) {
		t.Fatalf("not closed at refusal %d within the window", rateStrikes)
	}
	// Refusals spread wider than the window start it again.
	rt = requestRate{}
	for i := range 3 * rateStrikes {
		if rt.strike(t0.Add(time.Duration(i) * rateStrikeWindow / (rateStrikes - 1))) {
			t.Fatalf("closed at refusal %d, spread over more than the window", i+1)
		}
	}
}

// answerRequests makes the handler answer every request but ACK with 200,
// so a client sees in order what each of its requests got.
func answerRequests(ts *testServer) {
	ts.handler.onMessage = func(c *Conn, msg sip.Message) {
		if req, ok := msg.(*sip.Request); ok && req.Method != sip.ACK {
			_ = c.WriteMessage(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
}

func expectStatus(t *testing.T, ws *websocket.Conn, callID string, status int) *sip.Response {
	t.Helper()
	_, msg := readSIP(t, ws)
	resp, ok := msg.(*sip.Response)
	if !ok || resp.StatusCode != status || resp.CallID().Value() != callID {
		t.Fatalf("got %q, want %d for %s", msg.String(), status, callID)
	}
	return resp
}

// TestRequestRatePerConn: past requests_per_conn and its burst a request
// gets 503 with Retry-After and an ACK nothing, a response still passes,
// and a refilled allowance lets requests in again.
func TestRequestRatePerConn(t *testing.T) {
	clock := newFakeClock()
	lim := roomyLimits()
	lim.RequestsPerConn = 1 // burst 2
	ts := startServer(t, testConfig(), WithLimits(lim), withClock(clock.now))
	answerRequests(ts)
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))

	send(t, ws, websocket.TextMessage, optionsMsg("r1"))
	send(t, ws, websocket.TextMessage, optionsMsg("r2"))
	send(t, ws, websocket.TextMessage, optionsMsg("r3"))
	send(t, ws, websocket.TextMessage, strings.NewReplacer("OPTIONS", "ACK").Replace(optionsMsg("r4")))
	send(t, ws, websocket.TextMessage, strings.Replace(okResponse, "r1", "resp", 1))
	expectStatus(t, ws, "r1", 200)
	expectStatus(t, ws, "r2", 200)
	resp := expectStatus(t, ws, "r3", 503)
	if h := resp.GetHeader("Retry-After"); h == nil || h.Value() != "1" {
		t.Errorf("Retry-After = %v, want 1", h)
	}
	for _, want := range []string{"r1", "r2", "resp"} {
		if got := ts.handler.nextMessage(t).msg.CallID().Value(); got != want {
			t.Fatalf("handler got %s, want %s", got, want)
		}
	}

	clock.advance(time.Second)
	send(t, ws, websocket.TextMessage, optionsMsg("r5"))
	// Nothing came for the ACK: the next frame answers r5.
	expectStatus(t, ws, "r5", 200)
	ts.handler.nextMessage(t)
	if n := ts.srv.Refusals()["request_rate"]; n != 2 {
		t.Errorf("request_rate refusals = %d, want 2", n)
	}
}

// TestRequestRateCloses: a connection that goes on past the limit is
// closed with 1008 at its rateStrikes-th refusal.
func TestRequestRateCloses(t *testing.T) {
	lim := roomyLimits()
	lim.RequestsPerConn = 1
	ts := startServer(t, testConfig(), WithLimits(lim), withClock(newFakeClock().now))
	answerRequests(ts)
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	for i := range 2 + rateStrikes {
		send(t, ws, websocket.TextMessage, optionsMsg("c"+string(rune('a'+i))))
	}
	// The 503s still queued when the close comes are dropped with it, as
	// for any 1008: readClose skips those that made it.
	ce := readClose(t, ws)
	if ce.Code != websocket.ClosePolicyViolation || ce.Text != "request rate exceeded" {
		t.Errorf("close %d %q, want 1008 request rate exceeded", ce.Code, ce.Text)
	}
	ts.handler.nextClosed(t)
	got := ts.srv.Refusals()
	if got["request_rate"] != rateStrikes-1 || got["request_rate_close"] != 1 {
		t.Errorf("refusals %v, want %d request_rate and 1 request_rate_close", got, rateStrikes-1)
	}
}
