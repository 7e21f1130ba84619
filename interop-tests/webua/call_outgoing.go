package webua

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Invite calls target with a non-trickle pion offer. It returns once the
// INVITE is written; responses arrive through Provisional and Result.
func (u *UA) Invite(ctx context.Context, target string, opts ...InviteOption) (*Call, error) {
	var o inviteOptions
	for _, opt := range opts {
		opt(&o)
	}
	var to sip.Uri
	if err := sip.ParseUri(target, &to); err != nil {
		return nil, fmt.Errorf("invite %q: parse target: %w", target, err)
	}
	d := dialog{
		callID:       randomToken(22),
		localTag:     randomToken(10),
		local:        *u.aor.Clone(),
		remote:       to,
		remoteTarget: to,
		localCSeq:    uint32(mrand.IntN(10000)) + 1, // JsSIP starts at a random CSeq
	}
	from := sip.FromHeader{Address: *d.local.Clone(), Params: params("tag", d.localTag)}
	toHdr := sip.ToHeader{Address: *to.Clone(), Params: sip.NewParams()}
	req := u.newRequest(sip.INVITE, *to.Clone(), from, toHdr, d.callID, d.localCSeq)
	req.AppendHeader(u.contactHeader())
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	req.AppendHeader(sip.NewHeader("Supported", "ice,replaces,outbound"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if o.challenge != nil {
		auth, err := u.authorization(req, o.challenge)
		if err != nil {
			return nil, fmt.Errorf("invite %s: %w", target, err)
		}
		req.AppendHeader(auth)
	}

	c := newCall(u, directionOutgoing, req)
	c.dialog = d
	c.media.observer = o.observer // before offer starts the media goroutines
	offer, err := c.media.offer(ctx)
	if err != nil {
		c.media.close()
		return nil, fmt.Errorf("invite %s: %w", target, err)
	}
	req.SetBody([]byte(offer))
	c.localSDP = offer

	if err := u.addCall(c); err != nil {
		c.media.close()
		return nil, fmt.Errorf("invite %s: %w", target, err)
	}
	key := requestTxKey(req)
	_, err = u.addTx(req, func(res *sip.Response) { c.onInviteResponse(key, res) })
	if err == nil {
		c.mu.Lock()
		c.inviteSent = time.Now()
		c.mu.Unlock()
		err = u.writeMessage(req)
	}
	if err != nil {
		u.removeTx(key)
		c.end("failed")
		return nil, fmt.Errorf("invite %s: %w", target, err)
	}
	c.log.Info("call started", zap.String("method", string(sip.INVITE)))
	return c, nil
}

// Result waits for the final response of an outgoing call. The ACK has
// already been sent, for 2xx and non-2xx alike.
func (c *Call) Result(ctx context.Context) (*sip.Response, error) {
	if c.dir != directionOutgoing {
		return nil, fmt.Errorf("result: %w", errWrongDirection)
	}
	select {
	case <-c.finalSeen:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.final, nil
	case <-c.ended:
		// Ended without a final response: WebSocket gone or Close.
		select {
		case <-c.finalSeen:
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.final, nil
		default:
		}
		return nil, fmt.Errorf("result: %w: %s", errNoFinal, c.EndReason())
	case <-ctx.Done():
		return nil, fmt.Errorf("result: %w: %w", errNoFinal, ctx.Err())
	}
}

// Cancel sends CANCEL for an outgoing call still without a final response
// (RFC 3261 §9.1) and waits for the CANCEL's own response; the INVITE's 487
// then comes through Result.
func (c *Call) Cancel(ctx context.Context) error {
	if c.dir != directionOutgoing {
		return fmt.Errorf("cancel: %w", errWrongDirection)
	}
	c.mu.Lock()
	if c.final != nil || c.state != stateEarly {
		state := c.state
		c.mu.Unlock()
		return fmt.Errorf("cancel: %w: %s", errBadState, state)
	}
	c.cancelled = true
	c.mu.Unlock()

	res, err := c.ua.roundTrip(ctx, c.newCancel())
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("cancel: %w", &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	return nil
}

// newCancel copies what RFC 3261 §9.1 says a CANCEL shares with its INVITE:
// Request-URI, top Via (same branch), Route, Call-ID, From, To, CSeq number.
func (c *Call) newCancel() *sip.Request {
	return c.sameTransaction(sip.CANCEL, c.invite.To())
}

// onInviteResponse runs on the reader goroutine: it must not block.
func (c *Call) onInviteResponse(key string, res *sip.Response) {
	if res.StatusCode < 200 {
		if res.StatusCode > 100 {
			c.earlyDialog(res)
		}
		if res.StatusCode > 100 && isSDP(res) {
			// Early media: an answer in a 18x starts media at once.
			if err := c.media.applyAnswer(string(res.Body())); err != nil {
				c.log.Warn("early answer rejected", zap.Int("status", res.StatusCode), zap.Error(err))
			}
		}
		select {
		case c.provisional <- res:
		default:
		}
		return
	}
	c.ua.removeTx(key)
	if res.IsSuccess() {
		c.onInviteSuccess(res)
	} else {
		c.onInviteFailure(res)
	}
}

// earlyDialog follows the early dialog a 18x with a To tag makes (RFC 3261
// §12.1), so INFO can go before the answer; the latest fork's is kept.
func (c *Call) earlyDialog(res *sip.Response) {
	tag := ""
	if to := res.To(); to != nil {
		tag = tagOf(to.Params)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if tag == "" || c.state != stateEarly {
		return
	}
	c.dialog.remoteTag = tag
	if contact := res.Contact(); contact != nil {
		c.dialog.remoteTarget = *contact.Address.Clone()
	}
	c.dialog.routeSet = routeSetFrom(res, true)
}

func (c *Call) onInviteSuccess(res *sip.Response) {
	now := time.Now()
	c.mu.Lock()
	if c.answered.IsZero() {
		c.answered = now
	}
	if to := res.To(); to != nil {
		c.dialog.remoteTag = tagOf(to.Params)
	}
	if contact := res.Contact(); contact != nil {
		c.dialog.remoteTarget = *contact.Address.Clone()
	}
	c.dialog.routeSet = routeSetFrom(res, true)
	ended := c.state == stateEnded
	if !ended {
		c.state = stateConfirmed
	}
	c.final = res
	d := c.dialog
	c.mu.Unlock()
	c.finalOnce.Do(func() { close(c.finalSeen) })

	// The 2xx ACK is its own transaction: in-dialog, new branch, INVITE's CSeq number (RFC 3261 §13.2.2.4).
	ack := c.ua.dialogRequest(sip.ACK, d, c.invite.CSeq().SeqNo)
	if err := c.ua.writeMessage(ack); err != nil {
		c.log.Warn("send ack", zap.Error(err))
	}
	if ended {
		return
	}
	if !isSDP(res) {
		return
	}
	c.mu.Lock()
	c.remoteSDP = string(res.Body())
	c.mu.Unlock()
	if err := c.media.applyAnswer(string(res.Body())); err != nil {
		c.log.Warn("answer rejected", zap.Int("status", res.StatusCode), zap.Error(err))
		c.end("media failed")
	}
}

func (c *Call) onInviteFailure(res *sip.Response) {
	c.mu.Lock()
	c.final = res
	cancelled := c.cancelled
	c.mu.Unlock()
	c.finalOnce.Do(func() { close(c.finalSeen) })

	if err := c.ua.writeMessage(c.newNon2xxAck(res)); err != nil {
		c.log.Warn("send ack", zap.Error(err))
	}
	reason := fmt.Sprintf("rejected %d", res.StatusCode)
	if cancelled && res.StatusCode == sip.StatusRequestTerminated {
		reason = "cancelled"
	}
	c.end(reason)
}

// newNon2xxAck is part of the INVITE transaction (RFC 3261 §17.1.1.3): like
// a CANCEL, with To from the response.
func (c *Call) newNon2xxAck(res *sip.Response) *sip.Request {
	return c.sameTransaction(sip.ACK, res.To())
}

// sameTransaction builds a request of the INVITE's transaction: same
// Request-URI, top Via, Route, From, Call-ID and CSeq number.
func (c *Call) sameTransaction(method sip.RequestMethod, to *sip.ToHeader) *sip.Request {
	inv := c.invite
	req := sip.NewRequest(method, *inv.Recipient.Clone())
	req.AppendHeader(inv.Via().Clone())
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(h))
	}
	maxForwards := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxForwards)
	req.AppendHeader(sip.HeaderClone(to))
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: method})
	req.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	req.SetBody(nil)
	return req
}

func isSDP(msg interface {
	GetHeader(name string) sip.Header
	Body() []byte
}) bool {
	ct := msg.GetHeader("Content-Type")
	return ct != nil && len(msg.Body()) > 0 && sip.ASCIIToLower(ct.Value()) == "application/sdp"
}
