package sipws

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

const (
	// rateStrikes refusals within rateStrikeWindow close the connection
	// with 1008: a browser told 503 with Retry-After would have slowed down
	// by then; one that goes on is flooding.
	rateStrikes      = 10
	rateStrikeWindow = 5 * time.Second
)

// requestRate is a connection's allowance of SIP requests
// (limits.requests_per_conn) and its record of refusals. Only the
// connection's handler goroutine touches it, one frame at a time.
type requestRate struct {
	lim         *rate.Limiter
	strikes     int
	windowStart time.Time
}

// limit takes one request's worth of the allowance for a frame that is a
// request. Past the allowance it returns the refusal, decided before any
// parsing: 503 with Retry-After for a request, nothing for an ACK or for
// bytes that are no request, and a close with 1008 at the rateStrikes-th
// refusal. Keepalives and responses take nothing: the browser's responses
// answer the gateway's own requests.
func (r *requestRate) limit(data []byte, now time.Time) (frameResult, bool) {
	data = bytes.TrimLeft(data, "\r\n")
	if len(bytes.TrimSpace(data)) == 0 || isResponse(data) || r.lim.AllowN(now, 1) {
		return frameResult{}, false
	}
	if r.strike(now) {
		return frameResult{
			action:      actionClose,
			refusal:     refusalRateClose,
			closeCode:   websocket.ClosePolicyViolation,
			closeReason: "request rate exceeded",
			err:         fmt.Errorf("%w: %d refusals within %v", errRequestRate, rateStrikes, rateStrikeWindow),
		}, true
	}
	err := fmt.Errorf("%w: %g per second", errRequestRate, float64(r.lim.Limit()))
	res := frameResult{action: actionDrop, refusal: refusalRequestRate, err: err}
	if req, ok := scanRequest(data); ok && req.method != "ACK" {
		res.action = actionReject
		res.reply = intakeResponse(req, statusUnavailable, err, "Retry-After: "+strconv.Itoa(retryAfter(r.lim, now)))
	}
	return res, true
}

// strike records a refusal; true when it is the rateStrikes-th within
// rateStrikeWindow of the first.
func (r *requestRate) strike(now time.Time) bool {
	if r.strikes == 0 || now.Sub(r.windowStart) >= rateStrikeWindow {
		r.strikes, r.windowStart = 0, now
	}
	r.strikes++
	return r.strikes >= rateStrikes
}
