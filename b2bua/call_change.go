package b2bua

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// Mid-call session changes (RFC 3264 §8, RFC 3311): a re-INVITE or UPDATE
// with an offer from either leg. The media session decides whether the
// other leg must hear of it; if so, the offer goes on as our own re-INVITE
// or UPDATE there (a sessionChange) and its answer comes back as the
// answer to the first leg. One change is in flight per call at a time.

// sessionChange is an offer of ours in flight on a leg: carrying another
// leg's re-INVITE or UPDATE (in), or our own (in nil: the answer to an
// offerless re-INVITE changed what this leg must hear).
type sessionChange struct {
	in     *serverTx
	out    *clientTx
	method sip.RequestMethod
	offer  []byte
	// glare: a 491 came back; the offer goes again after the back-off.
	// tries counts the sends, bounded by maxGlareRetries.
	glare bool
	tries int
}

// maxGlareRetries bounds how often an offer that met 491 is sent again;
// then the leg that offered gets the 491 and retries itself.
const maxGlareRetries = 2

// inviteBusy: an INVITE transaction is in progress on the leg either way,
// or our 2xx on it awaits its ACK: no new INVITE may start (RFC 3261 14.1).
func (c *Call) inviteBusy(l *leg) bool {
	return l.ok != nil || c.inviteBusyBesidesAck(l)
}

func (c *Call) inviteBusyBesidesAck(l *leg) bool {
	if tx := l.inviteOut; tx != nil && !tx.final {
		return true
	}
	if in := l.inviteIn; in != nil && !in.final {
		return true
	}
	for tx := range l.out {
		if tx.req.IsInvite() && !tx.final {
			return true
		}
	}
	for in := range l.in {
		if in.req.IsInvite() {
			return true
		}
	}
	return false
}

func (s Side) media() mediabridge.Leg {
	if s == SideWeb {
		return mediabridge.LegWeb
	}
	return mediabridge.LegCore
}

// onSessionRequest takes a re-INVITE or UPDATE. One that changes nothing
// is a refresh, answered at once on its own leg: an UPDATE without a body
// (a session timer, RFC 4028), or a description that repeats the leg's
// last one (same o= version, RFC 3264 §8). An offerless re-INVITE gets our
// offer; its answer comes in the ACK. An offer goes to the media session,
// which answers it or gives the offer for the other leg.
func (c *Call) onSessionRequest(x *leg, in *serverTx) {
	req := in.req
	body := sdpBody(req)
	if x.side == SideCore {
		if res := c.g.tooBrief(req, x.dlg.localTag); res != nil {
			_ = in.reply(res)
			return
		}
	}
	y := c.other(x)
	switch {
	case len(req.Body()) == 0 && req.Method == sip.UPDATE:
		// A session refresh: nothing is offered (RFC 3311, RFC 4028).
		c.answerChange(x, in, nil, "session refreshed")
		return
	case c.change != nil && c.change.out != nil && c.change.out.leg == x.side, x.oa.state == offerLocalPending,
		y.oa.state == offerLocalPending:
		// RFC 3261 14.2, RFC 3311 §5.2: an offer of ours crosses it.
		_ = in.reply(response(req, 491, "Request Pending", x.dlg.localTag))
		return
	case body != nil && mediabridge.Unchanged(x.oa.theirs, body):
		c.answerChange(x, in, x.oa.ours, "session refreshed")
		return
	case c.change != nil || x.oa.state == offerRemotePending:
		// The leg's previous offer is still being answered.
		res := response(req, 500, "Server Internal Error", x.dlg.localTag)
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
		_ = in.reply(res)
		return
	case body == nil && len(req.Body()) > 0:
		res := response(req, 415, "Unsupported Media Type", x.dlg.localTag)
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		_ = in.reply(res)
		return
	case body == nil:
		offer, err := c.media.OfferTo(x.side.media())
		if err != nil {
			c.refuseChange(x, in, err)
			return
		}
		x.oa.send(true, offer)
		c.answerChange(x, in, offer, "offer made for an offerless re-INVITE")
		x.okOffers = true
		return
	case y.ok != nil && c.waiting == nil && !c.inviteBusyBesidesAck(y):
		// The other leg's INVITE is not acknowledged yet and no new INVITE
		// may start there (RFC 3261 14.1): this one waits for that ACK,
		// which is on its way.
		x.track(in)
		c.waiting = in
		return
	case c.inviteBusy(y), !y.confirmed:
		_ = in.reply(response(req, 491, "Request Pending", x.dlg.localTag))
		return
	}
	step, err := c.media.Offer(x.side.media(), body)
	if err != nil {
		c.refuseChange(x, in, err)
		return
	}
	x.oa.receive(true, body)
	if step.Answer != nil {
		x.oa.send(false, step.Answer)
		c.answerChange(x, in, step.Answer, "session changed on one leg")
		return
	}
	method := sip.INVITE
	if req.Method == sip.UPDATE && y.allowsUpdate {
		method = sip.UPDATE
	}
	x.track(in)
	c.startChange(&sessionChange{in: in, method: method, offer: step.Offer}, y)
}

// answerChange answers a leg's re-INVITE or UPDATE with 200 (a description
// when the request is an INVITE or carried one).
func (c *Call) answerChange(x *leg, in *serverTx, sdp []byte, what string) {
	req := in.req
	// A re-INVITE or UPDATE refreshes the remote target (RFC 3261 12.2.2).
	x.dlg.remoteTarget = remoteTargetOf(req, x.dlg.remoteTarget)
	res := response(req, 200, "OK", x.dlg.localTag)
	res.AppendHeader(c.contact(x))
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	if x.side == SideCore {
		c.answerTimer(req, res)
	}
	if sdp != nil && (req.IsInvite() || len(req.Body()) > 0) {
		setSDP(res, sdp)
	}
	delete(x.in, in)
	if err := in.reply(res); err != nil {
		c.log.Debug("session change answer", zap.Stringer("leg", x.side), zap.Error(err))
	}
	c.log.Debug(what, zap.Stringer("leg", x.side), zap.String("method", string(req.Method)))
	if req.IsInvite() {
		c.awaitAck(x, res)
	}
}

// refuseChange: the offer cannot be bridged; the leg keeps its session
// (RFC 3261 14.2).
func (c *Call) refuseChange(x *leg, in *serverTx, err error) {
	se := mediaStatus(err)
	c.log.Info("session change refused", zap.Stringer("leg", x.side), zap.Int("status", se.Code), zap.Error(err))
	res := response(in.req, se.Code, se.Reason, x.dlg.localTag)
	res.AppendHeader(sip.NewHeader("Warning", `399 imsgate "`+strings.ReplaceAll(se.Error(), `"`, `'`)+`"`))
	delete(x.in, in)
	_ = in.reply(res)
}

// startChange sends the change's offer on leg y.
func (c *Call) startChange(ch *sessionChange, y *leg) {
	c.change = ch
	req := y.dlg.request(ch.method, 0)
	req.AppendHeader(c.contact(y))
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	if y.side == SideCore {
		copyHeaders(y.invite, req, "Authorization", "Proxy-Authorization")
		c.keepTimer(req) // a change refreshes the session timer too (RFC 4028 §9)
	}
	setSDP(req, ch.offer)
	ch.out = &clientTx{leg: y.side, purpose: txChange, req: req}
	ch.glare = false
	ch.tries++
	y.watch(ch.out)
	y.oa.send(true, ch.offer)
	if err := y.tr.send(c, ch.out); err != nil {
		c.onChangeFailed(ch.out, statusOf(err))
	}
}

// onChangeResponse takes the answer to our re-INVITE or UPDATE.
func (c *Call) onChangeResponse(tx *clientTx, res *sip.Response) {
	y := c.leg(tx.leg)
	code := res.StatusCode
	if c.pastFinal(y, tx, code) {
		return
	}
	c.settle(tx)
	ch := c.change
	if ch == nil || ch.out != tx {
		return
	}
	if code >= 300 {
		if tx.req.IsInvite() {
			y.tr.ackFailure(tx.req, res)
		}
		c.onChangeRefused(ch, y, res)
		return
	}
	if tx.req.IsInvite() {
		c.ackReinvite(y, tx)
	}
	y.dlg.remoteTarget = remoteTargetOf(res, y.dlg.remoteTarget)
	if y.side == SideCore {
		c.agreeRefresh(res)
	}
	c.change = nil
	body := sdpBody(res)
	if body == nil {
		c.media.Rollback(y.side.media())
		y.oa.refuse()
		c.finishChange(ch, nil, statusErr(488, "Not Acceptable Here", errNoAnswer))
		return
	}
	y.oa.receive(false, body)
	step, err := c.media.Answer(y.side.media(), body)
	if err != nil {
		// The leg took our offer but answered what cannot be bridged: the
		// session stays as it was on our side.
		c.log.Warn("answer to our session change unusable", zap.Stringer("leg", y.side), zap.Error(err))
		c.media.Rollback(y.side.media())
		y.oa.refuse()
		c.finishChange(ch, nil, mediaStatus(err))
		return
	}
	c.finishChange(ch, step.Answer, nil)
	if step.Offer != nil {
		c.startChange(&sessionChange{method: sip.INVITE, offer: step.Offer}, c.other(y))
	}
}

// finishChange answers the leg whose offer the change carried.
func (c *Call) finishChange(ch *sessionChange, answer []byte, se *StatusError) {
	in := ch.in
	if in == nil {
		return
	}
	x := c.leg(in.leg)
	if se != nil {
		x.oa.refuse()
		delete(x.in, in)
		_ = in.reply(response(in.req, se.Code, se.Reason, x.dlg.localTag))
		return
	}
	x.oa.send(false, answer)
	c.answerChange(x, in, answer, "session changed on both legs")
}

// onChangeRefused: leg y refused our offer. After a 491 the same offer
// goes again after the RFC 3261 §14.1 back-off; any other refusal goes
// back to the leg that offered, and the session stays as it was.
func (c *Call) onChangeRefused(ch *sessionChange, y *leg, res *sip.Response) {
	y.oa.refuse()
	if res.StatusCode == 491 && ch.tries <= maxGlareRetries {
		ch.glare = true
		c.arm(timerKey{timerGlare, y.side}, c.glareBackoff(y))
		c.log.Info("glare: our session change crossed the other side's, retrying", zap.Stringer("leg", y.side))
		return
	}
	c.change = nil
	c.media.Rollback(y.side.media())
	c.finishChange(ch, nil, statusErr(res.StatusCode, res.Reason, nil))
	switch res.StatusCode {
	case 481:
		c.end(Cause{Reason: EndRejected, By: y.side, Status: 481})
	case 408:
		c.end(Cause{Reason: EndTimeout, By: y.side, Status: 408})
	}
}

// onChangeFailed: our offer got no final response.
func (c *Call) onChangeFailed(tx *clientTx, se *StatusError) {
	ch := c.change
	if ch == nil || ch.out != tx {
		return
	}
	y := c.leg(tx.leg)
	c.change = nil
	y.oa.refuse()
	c.media.Rollback(y.side.media())
	c.finishChange(ch, nil, se)
	if se.Code == 408 && !(y.side == SideWeb && c.detached) {
		c.end(Cause{Reason: EndTimeout, By: y.side, Status: 408, Err: se})
	}
}

// onGlareTimer sends the offer that met a 491 again.
func (c *Call) onGlareTimer(side Side) {
	ch := c.change
	if ch == nil || !ch.glare || c.ending {
		return
	}
	if c.leg(side).ok != nil {
		c.arm(timerKey{timerGlare, side}, 4*sip.T1) // its INVITE is not acknowledged yet
		return
	}
	c.startChange(ch, c.leg(side))
}

// glareBackoff is RFC 3261 §14.1: 2.1 to 4 s when we chose the leg's
// Call-ID, 0 to 2 s otherwise, in units of 10 ms, scaled with T1 like every
// other SIP timer.
func (c *Call) glareBackoff(y *leg) time.Duration {
	ticks := rand.IntN(201)
	if y.side != c.origin { // we made this leg's Call-ID
		ticks = 210 + rand.IntN(191)
	}
	return time.Duration(ticks) * 10 * time.Millisecond * sip.T1 / (500 * time.Millisecond)
}
