package sipws

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

func TestHeaderLinesOver(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		max  int
		want bool
	}{
		{name: "register at its count", msg: registerMsg, max: 8},
		{name: "register over", msg: registerMsg, max: 7, want: true},
		{name: "folded lines count with theirs", msg: "INVITE sip:a@b SIP/2.0\r\nA: 1\r\n 2\r\n\t3\r\nB: 4\r\n\r\n", max: 2},
		{name: "body lines do not count", msg: "INVITE sip:a@b SIP/2.0\r\nA: 1\r\n\r\nx: 1\r\ny: 2\r\n", max: 1},
		{name: "bare LF", msg: "INVITE sip:a@b SIP/2.0\nA: 1\nB: 2\n\n", max: 1, want: true},
		{name: "no end of headers", msg: "INVITE sip:a@b SIP/2.0\r\nA: 1\r\nB: 2", max: 1, want: true},
		{name: "start line only", msg: "INVITE sip:a@b SIP/2.0", max: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := headerLinesOver([]byte(tt.msg), tt.max); got != tt.want {
				t.Errorf("headerLinesOver(max %d) = %v, want %v", tt.max, got, tt.want)
			}
		})
	}
}

// TestIntakeLimitsOverWS: limits.max_headers and limits.max_sdp_bytes
// reach the connections, and their refusals are answered and counted.
func TestIntakeLimitsOverWS(t *testing.T) {
	lim := roomyLimits()
	lim.MaxHeaders = 12
	lim.MaxSDPBytes = 100
	tests := []struct {
		name       string
		frame      string
		wantStatus int
		wantReason string
		kind       string
	}{
		{name: "too many headers", frame: withHeaders(registerMsg, 5), wantStatus: 400,
			wantReason: "Too Many Header Fields", kind: "too_many_headers"},
		{name: "sdp too large", frame: withBody(registerMsg, "application/sdp", 101), wantStatus: 413,
			wantReason: "Request Entity Too Large", kind: "sdp_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, testConfig(), WithLimits(lim))
			ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
			send(t, ws, websocket.TextMessage, tt.frame)
			resp := expectStatus(t, ws, "aiuy7k9njasd", tt.wantStatus)
			if resp.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", resp.Reason, tt.wantReason)
			}
			if n := ts.srv.Refusals()[tt.kind]; n != 1 {
				t.Errorf("%s refusals = %d, want 1", tt.kind, n)
			}
			// The connection stays: a message within the limits goes through.
			send(t, ws, websocket.TextMessage, registerMsg)
			ts.handler.nextMessage(t)
		})
	}
}

// FuzzIntake checks the whole decision a connection makes on a frame, the
// request rate included: each input goes through three times against an
// allowance of one, so the second is refused by the rate and, with the
// strikes at their last, the third closes.
func FuzzIntake(f *testing.F) {
	addFrameSeeds(f)
	parser := sip.NewParser()
	t0 := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, frame []byte) {
		rt := requestRate{lim: rate.NewLimiter(1e-9, 1), strikes: rateStrikes - 2, windowStart: t0}
		for range 3 {
			res := intakeFrame(&rt, parser, tightFrameLimits, frame, t0)
			checkFrameResult(t, frame, res)
			if res.action == actionReject && res.refusal == refusalRequestRate && !strings.Contains(string(res.reply), "\r\nRetry-After: ") {
				t.Fatalf("503 without Retry-After: %q", res.reply)
			}
		}
	})
}
