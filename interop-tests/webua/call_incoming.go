package webua

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// handleRequest answers what a browser answers; it runs on the reader goroutine.
func (u *UA) handleRequest(req *sip.Request, raw []byte) {
	callID := callIDOf(req)
	u.log.Debug("sip request", zap.String("method", string(req.Method)), zap.String("sip_call_id", callID))
	if req.Via() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || callID == "" {
		u.log.Warn("request missing mandatory headers", zap.String("method", string(req.Method)))
		u.pushUnmatched(raw)
		return
	}
	c := u.findCall(callID)
	switch req.Method {
	case sip.INVITE:
		if c != nil {
			c.onReInvite(req)
			return
		}
		u.onInvite(req)
	case sip.ACK:
		if c != nil && !c.onReinviteAck(req) {
			c.ackOnce.Do(func() { close(c.acked) })
		}
		// An ACK for a non-2xx we sent, or for a call already gone: absorbed.
	case sip.BYE:
		if c == nil {
			u.respond(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
			u.pushUnmatched(raw)
			return
		}
		u.respond(req, sip.StatusOK, "OK")
		c.end("bye")
	case sip.CANCEL:
		if c == nil || c.dir != directionIncoming || !sameBranch(c.invite, req) {
			u.respond(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
			u.pushUnmatched(raw)
			return
		}
		c.onCancel(req)
	case sip.UPDATE:
		if c == nil {
			u.respond(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
			return
		}
		c.onReInvite(req)
	case sip.OPTIONS, sip.INFO, sip.MESSAGE, sip.NOTIFY:
		u.respond(req, sip.StatusOK, "OK")
		switch {
		case c != nil && tagOf(req.To().Params) != "":
			c.record(SessionRequest{Method: string(req.Method), Status: sip.StatusOK, At: time.Now(),
				Event: headerOf(req, "Event"), Body: string(req.Body())})
		case req.Method == sip.MESSAGE:
			u.pushMessage(req)
		}
	case sip.REFER:
		if c == nil || tagOf(req.To().Params) == "" {
			u.respond(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
			return
		}
		c.onRefer(req)
	default:
		res := sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
		u.writeResponse(res)
	}
}

func (u *UA) respond(req *sip.Request, code int, reason string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	u.writeResponse(res)
}

func (u *UA) writeResponse(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	if err := u.writeMessage(res); err != nil {
		u.log.Warn("send response", zap.Int("status", res.StatusCode), zap.Error(err))
	}
}

func sameBranch(a, b *sip.Request) bool {
	ba, _ := a.Via().Params.Get("branch")
	bb, _ := b.Via().Params.Get("branch")
	return ba == bb
}

// onInvite starts an incoming call: 100 at once, then Incoming.
func (u *UA) onInvite(req *sip.Request) {
	c := newCall(u, directionIncoming, req)
	from, to := req.From(), req.To()
	c.dialog = dialog{
		callID:    callIDOf(req),
		localTag:  randomToken(10),
		remoteTag: tagOf(from.Params),
		local:     *to.Address.Clone(),
		remote:    *from.Address.Clone(),
		routeSet:  routeSetFrom(req, false),
		localCSeq: 0,
	}
	if contact := req.Contact(); contact != nil {
		c.dialog.remoteTarget = *contact.Address.Clone()
	} else {
		c.dialog.remoteTarget = *from.Address.Clone()
	}
	if err := u.addCall(c); err != nil {
		u.respond(req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	u.respond(req, sip.StatusTrying, "Trying")
	select {
	case u.incoming <- c:
		c.log.Info("call started", zap.String("method", string(sip.INVITE)))
	default:
		c.log.Warn("incoming call dropped: channel full")
		c.respondInvite(sip.StatusBusyHere, "Busy Here", "")
		c.end(fmt.Sprintf("rejected %d", sip.StatusBusyHere))
	}
}

// respondInvite answers the INVITE with our To tag, and for 18x/2xx our
// Contact (RFC 3261 §12.1.1).
func (c *Call) respondInvite(code int, reason, sdp string) error {
	var body []byte
	if sdp != "" {
		body = []byte(sdp)
	}
	res := sip.NewResponseFromRequest(c.invite, code, reason, body)
	res.To().Params.Add("tag", c.dialog.localTag)
	if code > 100 && code < 300 {
		res.AppendHeader(c.ua.contactHeader())
	}
	if sdp != "" {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	res.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	if err := c.ua.writeMessage(res); err != nil {
		return fmt.Errorf("send %d: %w", code, err)
	}
	return nil
}

// Ring sends 180 Ringing for an incoming call.
func (c *Call) Ring(ctx context.Context) error {
	if err := c.checkIncomingEarly(); err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	if err := c.respondInvite(sip.StatusRinging, "Ringing", ""); err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	return nil
}

// Answer sends 200 with a non-trickle pion answer and waits for the ACK.
func (c *Call) Answer(ctx context.Context) error {
	if err := c.checkIncomingEarly(); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	c.mu.Lock()
	if c.answering {
		c.mu.Unlock()
		return fmt.Errorf("answer: %w: already answering", errBadState)
	}
	c.answering = true
	answer := c.earlyAnswer
	c.mu.Unlock()
	if answer == "" {
		var err error
		if answer, err = c.answerOffer(ctx); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
	}
	c.mu.Lock()
	if c.state != stateEarly { // CANCEL won the race
		state := c.state
		c.mu.Unlock()
		return fmt.Errorf("answer: %w: %s", errBadState, state)
	}
	c.state = stateConfirmed
	c.localSDP = answer
	c.remoteSDP = string(c.invite.Body())
	c.mu.Unlock()
	if err := c.respondInvite(sip.StatusOK, "OK", answer); err != nil {
		c.end("failed")
		return fmt.Errorf("answer: %w", err)
	}
	select {
	case <-c.acked:
		return nil
	case <-c.ended:
		return fmt.Errorf("answer: %w: ended before ack: %s", errBadState, c.EndReason())
	case <-ctx.Done():
		return fmt.Errorf("answer: wait for ack: %w", ctx.Err())
	}
}

// Progress sends 183 Session Progress with our answer, so media flows
// before the call is answered (early media); Answer's 200 repeats it.
func (c *Call) Progress(ctx context.Context) error {
	if err := c.checkIncomingEarly(); err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	answer, err := c.answerOffer(ctx)
	if err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	c.mu.Lock()
	c.earlyAnswer = answer
	c.mu.Unlock()
	if err := c.respondInvite(sip.StatusSessionInProgress, "Session Progress", answer); err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	return nil
}

// answerOffer answers the INVITE's offer; failing, it refuses the call.
func (c *Call) answerOffer(ctx context.Context) (string, error) {
	if !isSDP(c.invite) {
		return "", errNoSDP
	}
	answer, err := c.media.answer(ctx, string(c.invite.Body()))
	if err != nil {
		c.end("media failed")
		_ = c.respondInvite(sip.StatusNotAcceptableHere, "Not Acceptable Here", "")
		return "", err
	}
	return answer, nil
}

// Reject answers an incoming call with a final non-2xx code.
func (c *Call) Reject(ctx context.Context, code int) error {
	if code < 300 || code > 699 {
		return fmt.Errorf("reject: %w: code %d is not a failure", errBadState, code)
	}
	if err := c.checkIncomingEarly(); err != nil {
		return fmt.Errorf("reject: %w", err)
	}
	c.end(fmt.Sprintf("rejected %d", code))
	if err := c.respondInvite(code, reasonPhrase(code), ""); err != nil {
		return fmt.Errorf("reject: %w", err)
	}
	return nil
}

func (c *Call) checkIncomingEarly() error {
	if c.dir != directionIncoming {
		return errWrongDirection
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateEarly {
		return fmt.Errorf("%w: %s", errBadState, c.state)
	}
	return nil
}

// onCancel: 200 for the CANCEL, then 487 for the INVITE unless already
// answered (RFC 3261 §9.2).
func (c *Call) onCancel(req *sip.Request) {
	c.ua.respond(req, sip.StatusOK, "OK")
	c.mu.Lock()
	early := c.state == stateEarly
	if early {
		c.state = stateEnded
	}
	c.mu.Unlock()
	if !early {
		return
	}
	if err := c.respondInvite(sip.StatusRequestTerminated, "Request Terminated", ""); err != nil {
		c.log.Warn("send 487", zap.Error(err))
	}
	c.end("cancel")
}

func reasonPhrase(code int) string {
	switch code {
	case sip.StatusBusyHere:
		return "Busy Here"
	case sip.StatusRequestTerminated:
		return "Request Terminated"
	case sip.StatusNotAcceptableHere:
		return "Not Acceptable Here"
	case sip.StatusRequestPending:
		return "Request Pending"
	case sip.StatusTemporarilyUnavailable:
		return "Temporarily Unavailable"
	case sip.StatusForbidden:
		return "Forbidden"
	case sip.StatusNotFound:
		return "Not Found"
	case sip.StatusGlobalDecline:
		return "Decline"
	case sip.StatusServiceUnavailable:
		return "Service Unavailable"
	case sip.StatusInternalServerError:
		return "Server Internal Error"
	default:
		return "Rejected"
	}
}
