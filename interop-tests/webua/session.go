package webua

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// inDialogDepth bounds InDialog; the reader drops when it is full.
const inDialogDepth = 32

// sessionStep bounds the pion work of answering one in-dialog offer.
const sessionStep = 10 * time.Second

// SessionRequest is one request the far end sent within a call's dialog
// (re-INVITE, UPDATE, OPTIONS, INFO, ...) and how this UA answered it.
type SessionRequest struct {
	Method string
	Offer  Direction // the offer's direction; "" when it carried no SDP
	Answer Direction // the direction of the SDP we answered with; "" for none
	Status int
	At     time.Time
	// Crossed: it came while our own offer awaited its answer or our ACK,
	// so it got 491 (RFC 3261 §14.2).
	Crossed bool
	// ReferTo, Event and Body: a REFER's target, a NOTIFY's event package
	// and any request's body (a NOTIFY's sipfrag, an INFO's content).
	ReferTo, Event, Body string
}

// pendingReinvite is a re-INVITE we answered 2xx: its ACK ends it and, for
// an offerless one, carries the answer to the offer in our 2xx.
type pendingReinvite struct {
	cseq      uint32
	offerless bool
	want      Direction
	acked     chan struct{} // closed by the ACK, or when the 2xx was not sent
}

// InDialog delivers each in-dialog request of the far end once answered
// (not ACK, BYE or CANCEL); it drops when nobody reads.
func (c *Call) InDialog() <-chan SessionRequest { return c.inDialog }

// InDialogSeen lists every in-dialog request of the far end so far.
func (c *Call) InDialogSeen() []SessionRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]SessionRequest(nil), c.seen...)
}

// LocalSDP is our last description in the session, offer or answer.
func (c *Call) LocalSDP() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.localSDP
}

// Sending reports whether the negotiated direction lets us send RTP.
func (c *Call) Sending() bool { return !c.media.muted.Load() }

func (c *Call) record(r SessionRequest) {
	c.mu.Lock()
	c.seen = append(c.seen, r)
	c.mu.Unlock()
	select {
	case c.inDialog <- r:
	default:
		c.log.Warn("in-dialog request not delivered: channel full", zap.String("method", r.Method))
	}
}

// onReInvite takes a re-INVITE or UPDATE on the reader goroutine. With our
// own offer pending it is glare: 491 (RFC 3261 §14.2, RFC 3311 §5.2).
// Otherwise it is answered on a goroutine of its own (pion may take a while).
func (c *Call) onReInvite(req *sip.Request) {
	c.mu.Lock()
	state, glare := c.state, c.offering || c.ackPending || c.reinvite != nil
	c.mu.Unlock()
	rec := SessionRequest{Method: string(req.Method), At: time.Now()}
	if isSDP(req) {
		rec.Offer = DirectionOf(string(req.Body()))
	}
	switch {
	case state != stateConfirmed:
		rec.Status = sip.StatusNotAcceptableHere
	case glare && (isSDP(req) || req.IsInvite()):
		rec.Status, rec.Crossed = sip.StatusRequestPending, true
	}
	if rec.Status != 0 {
		c.ua.respond(req, rec.Status, reasonPhrase(rec.Status))
		c.record(rec)
		return
	}
	if req.IsInvite() {
		// Block further offers until the ACK, like a browser's signaling state.
		c.mu.Lock()
		c.reinvite = &pendingReinvite{cseq: req.CSeq().SeqNo, acked: make(chan struct{})}
		c.mu.Unlock()
	}
	c.ua.goTeardown(func() { c.answerSession(req, rec) })
}

func (c *Call) answerSession(req *sip.Request, rec SessionRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), sessionStep)
	defer cancel()
	c.mu.Lock()
	lastRemote, local, want := c.remoteSDP, c.localSDP, c.want
	c.mu.Unlock()
	offer := ""
	if isSDP(req) {
		offer = string(req.Body())
	}
	var body string
	var err error
	switch {
	case offer == "" && !req.IsInvite():
		// An UPDATE without a body: a session-timer refresh (RFC 4028).
	case offer == "":
		// Offerless re-INVITE: our offer in the 2xx, the answer in the ACK.
		body, err = c.media.reoffer(ctx)
		body = withDirection(body, want)
		c.mu.Lock()
		if c.reinvite != nil {
			c.reinvite.offerless, c.reinvite.want = true, want
		}
		c.localSDP = body
		c.mu.Unlock()
	case originOf(offer) == originOf(lastRemote):
		body = local // the same version again: a refresh (RFC 3264 §8)
	default:
		body, err = c.media.reanswer(ctx, offer)
		dir := answerDirection(want, rec.Offer)
		body = withDirection(body, dir)
		c.media.setSending(dir.sends())
		c.mu.Lock()
		c.localSDP, c.remoteSDP = body, offer
		c.mu.Unlock()
	}
	if err != nil {
		c.log.Warn("in-dialog offer not answered", zap.String("method", string(req.Method)), zap.Error(err))
		rec.Status = sip.StatusNotAcceptableHere
		c.mu.Lock()
		if p := c.reinvite; p != nil {
			close(p.acked)
			c.reinvite = nil
		}
		c.mu.Unlock()
		c.ua.respond(req, rec.Status, reasonPhrase(rec.Status))
		c.record(rec)
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(c.ua.contactHeader())
	if body != "" {
		res.SetBody([]byte(body))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		rec.Answer = DirectionOf(body)
	}
	rec.Status = sip.StatusOK
	c.ua.writeResponse(res)
	c.record(rec)
}

// onReinviteAck takes the ACK of a re-INVITE's 2xx; false when the ACK is
// not for one (it is the first INVITE's).
func (c *Call) onReinviteAck(ack *sip.Request) bool {
	c.mu.Lock()
	p := c.reinvite
	if p == nil || ack.CSeq().SeqNo != p.cseq {
		c.mu.Unlock()
		return false
	}
	c.reinvite = nil
	close(p.acked)
	if p.offerless && isSDP(ack) {
		c.remoteSDP = string(ack.Body())
	}
	c.mu.Unlock()
	if !p.offerless {
		return true
	}
	if !isSDP(ack) {
		c.log.Warn("ACK carries no answer to the offer in our 2xx")
		c.ua.goTeardown(func() { _ = c.media.rollback() })
		return true
	}
	answer := string(ack.Body())
	c.media.setSending(p.want.sends() && DirectionOf(answer).receives())
	c.ua.goTeardown(func() {
		if err := c.media.applyReanswer(answer); err != nil {
			c.log.Warn("answer in ACK rejected", zap.Error(err))
		}
	})
	return true
}

// Reoffer sends a re-INVITE or UPDATE (RFC 3311) with a new offer whose
// m-lines say want — a hold is SendOnly, a resume SendRecv — and returns its
// final response. A 2xx's answer is applied and a re-INVITE ACKed; any
// other answer (491 on glare) leaves the session as it was.
func (c *Call) Reoffer(ctx context.Context, method sip.RequestMethod, want Direction) (*sip.Response, error) {
	if err := c.awaitReinviteAck(ctx); err != nil {
		return nil, fmt.Errorf("reoffer: %w", err)
	}
	c.mu.Lock()
	switch {
	case c.state != stateConfirmed:
		state := c.state
		c.mu.Unlock()
		return nil, fmt.Errorf("reoffer: %w: %s", errBadState, state)
	case c.offering || c.ackPending || c.reinvite != nil:
		c.mu.Unlock()
		return nil, fmt.Errorf("reoffer: %w: an offer is pending", errBadState)
	}
	c.offering = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.offering = false
		c.mu.Unlock()
	}()

	sdp, err := c.media.reoffer(ctx)
	if err != nil {
		return nil, fmt.Errorf("reoffer: %w", err)
	}
	offer := withDirection(sdp, want)
	req := c.newInDialogRequest(method)
	req.AppendHeader(c.ua.contactHeader())
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(offer))
	// Until our ACK is out, an offer from the far end crosses ours: it
	// gets 491, as JsSIP answers while its own re-INVITE is unfinished.
	res, err := c.ua.roundTripThen(ctx, req, func(*sip.Response) {
		c.mu.Lock()
		c.ackPending = method == sip.INVITE
		c.mu.Unlock()
	})
	if err != nil {
		_ = c.media.rollback()
		return nil, fmt.Errorf("reoffer: %w", err)
	}
	// The answer is applied before the ACK goes: the far end may make its
	// next offer as soon as it has the ACK.
	var applyErr error
	if res.IsSuccess() && isSDP(res) {
		answer := string(res.Body())
		if applyErr = c.media.applyReanswer(answer); applyErr == nil {
			c.media.setSending(want.sends() && DirectionOf(answer).receives())
			c.mu.Lock()
			c.want, c.localSDP, c.remoteSDP = want, offer, answer
			c.mu.Unlock()
		}
	} else if err := c.media.rollback(); err != nil {
		c.log.Debug("rollback", zap.Error(err))
	}
	c.mu.Lock()
	c.offering, c.ackPending = false, false
	c.mu.Unlock()
	if method == sip.INVITE {
		if err := c.ua.writeMessage(c.ackFor(req, res)); err != nil {
			c.log.Warn("send ack", zap.Error(err))
		}
	}
	if applyErr != nil {
		return res, fmt.Errorf("reoffer: %w", applyErr)
	}
	return res, nil
}

// awaitReinviteAck waits for the ACK of a re-INVITE we answered: no new
// INVITE while one is in progress either way (RFC 3261 §14.1).
func (c *Call) awaitReinviteAck(ctx context.Context) error {
	c.mu.Lock()
	p := c.reinvite
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.acked:
		return nil
	case <-c.ended:
		return fmt.Errorf("%w: ended", errBadState)
	case <-ctx.Done():
		return fmt.Errorf("wait for the ACK of the far end's re-INVITE: %w", ctx.Err())
	}
}

// ackFor ACKs a re-INVITE's final response: a 2xx by a new in-dialog
// request (RFC 3261 §13.2.2.4), a failure within its transaction (§17.1.1.3).
func (c *Call) ackFor(inv *sip.Request, res *sip.Response) *sip.Request {
	if res.IsSuccess() {
		c.mu.Lock()
		d := c.dialog
		c.mu.Unlock()
		return c.ua.dialogRequest(sip.ACK, d, inv.CSeq().SeqNo)
	}
	ack := sip.NewRequest(sip.ACK, *inv.Recipient.Clone())
	ack.AppendHeader(inv.Via().Clone())
	for _, h := range inv.GetHeaders("Route") {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	maxForwards := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&maxForwards)
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	ack.SetBody(nil)
	return ack
}
