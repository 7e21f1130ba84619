package b2bua

import (
	"errors"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// end is where every call ends, once, whatever the cause: each leg gets
// what it is owed — an answer to its pending INVITE and requests, a CANCEL
// of ours, or a BYE of its dialog. The call then lives on only until its
// INVITE on the far leg is settled (over).
func (c *Call) end(cause Cause) {
	if c.ending {
		return
	}
	c.ending = true
	c.cause = cause
	c.g.removeCall(c)
	for _, l := range []*leg{c.web, c.core} {
		c.disarm(timerKey{timerNoAnswer, l.side})
		if in := l.inviteIn; in != nil && !in.final {
			code, reason := failureStatus(cause, l.side)
			_ = in.reply(response(in.req, code, reason, l.dlg.localTag))
		}
		for in := range l.in {
			if c.relayPending(in) {
				continue // answered when the other leg answers (over)
			}
			code, reason := 481, "Call/Transaction Does Not Exist"
			if cause.Reason == EndHangup {
				code, reason = 487, "Request Terminated" // RFC 3261 15.1.2
			}
			_ = in.reply(response(in.req, code, reason, l.dlg.localTag))
			delete(l.in, in)
		}
		if tx := l.inviteOut; tx != nil && !tx.final {
			c.cancel(l)
		}
		hungUp := cause.Reason == EndHangup && cause.By == l.side
		if l.confirmed && !l.byeSent && !hungUp {
			c.sendBye(l)
		}
	}
}

// relayPending: in was relayed to the other leg, which has not answered.
func (c *Call) relayPending(in *serverTx) bool {
	for tx := range c.other(c.leg(in.leg)).out {
		if tx.relay == in && !tx.final {
			return true
		}
	}
	return false
}

// fail answers the origin leg's INVITE with an error and ends the call.
func (c *Call) fail(se *StatusError, reason EndReason) {
	a := c.leg(c.origin)
	if in := a.inviteIn; in != nil && !in.final {
		c.g.removeCall(c) // before the answer: a retried INVITE finds no stale call
		res := response(in.req, se.Code, se.Reason, a.dlg.localTag)
		if se.Code == 488 && se.Err != nil {
			res.AppendHeader(sip.NewHeader("Warning", `399 imsgate "`+sanitizeWarning(se.Err.Error())+`"`))
		}
		_ = in.reply(res)
	}
	c.log.Info("call failed", zap.Int("status", se.Code), zap.Error(se))
	c.end(Cause{Reason: reason, By: SideGateway, Status: se.Code, Err: se.Err})
}

// failureStatus is what a leg's unanswered INVITE gets when the call ends.
func failureStatus(cause Cause, side Side) (int, string) {
	switch cause.Reason {
	case EndCanceled, EndHangup:
		return 487, "Request Terminated"
	case EndNoAnswer:
		if side == SideCore {
			return 480, "Temporarily Unavailable"
		}
		return 408, "Request Timeout"
	case EndTimeout:
		return 408, "Request Timeout"
	case EndFlowClosed:
		return 480, "Temporarily Unavailable"
	case EndMediaFailed:
		return 488, "Not Acceptable Here"
	}
	return 503, "Service Unavailable"
}

// mediaStatus maps a media error to the SIP status the offerer gets.
func mediaStatus(err error) *StatusError {
	switch {
	case errors.Is(err, mediabridge.ErrNoCommonCodec), errors.Is(err, mediabridge.ErrBadSDP),
		errors.Is(err, errNoAnswer):
		return statusErr(488, "Not Acceptable Here", err)
	}
	return statusErr(500, "Server Internal Error", err)
}

func sanitizeWarning(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '"' || r == '\\' || r < 0x20 {
			r = ' '
		}
		out = append(out, r)
	}
	if len(out) > 200 {
		out = out[:200]
	}
	return string(out)
}
