package b2bua

import (
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

var errNoAnswer = errors.New("2xx without SDP answer")

// inviteHeaders are copied from the dialog-forming INVITE onto the one we
// send, by the side it goes to. Toward the core: the browser's credentials
// (digest pass-through, TS 24.371: the Request-URI is kept so they stay
// valid) and identity; toward the browser: the caller's identity.
var inviteHeaders = map[Side][]string{
	SideCore: {"Authorization", "Proxy-Authorization", "Privacy", "Subject", "Replaces", "Referred-By"},
	SideWeb:  {"P-Asserted-Identity", "Privacy", "Subject", "Alert-Info", "Replaces", "Referred-By"},
}

// failureHeaders travel with a final error response to the other leg, so
// the caller can act on it: challenges, redirections (3xx Contact), the
// extension a 420/421 names, retry hints.
var failureHeaders = []string{"WWW-Authenticate", "Proxy-Authenticate", "Contact", "Retry-After", "Warning",
	"Reason", "Unsupported", "Require", "Allow", "Accept", "Accept-Encoding", "Min-Expires", "Min-SE"}

// startWebCall takes a browser's dialog-forming INVITE.
func (g *Gateway) startWebCall(f webFlow, in *serverTx, log *zap.Logger) {
	inv := in.req
	if c := g.callByWeb(f.Flow(), callIDOf(inv)); c != nil && c.origin == SideWeb && c.originBranch == branchOf(inv) {
		return // a retransmission of an INVITE a call is handling
	}
	// Before anything is allocated for the call: its media ports above all.
	if !g.admitted(f, in, log) {
		return
	}
	caller := g.callerIdentity(f.Flow(), inv)
	slot, why, err := g.takeSlot(caller)
	switch {
	case err != nil:
		g.refuse(in, statusOf(err), log)
		return
	case why != refusalNone:
		g.refuseWeb(f, in, why, log)
		return
	}
	c, err := g.newCall(SideWeb, f, callIDOf(inv), token(24))
	if err != nil {
		g.slots.give(slot)
		g.refuse(in, statusOf(err), log)
		return
	}
	c.holdSlot(slot)
	c.caller, c.creds = caller, g.credentials(f.Flow())
	c.originBranch = branchOf(inv)
	c.web.receiveInvite(in)
	g.launch(c, in, log)
}

// startCoreCall takes the core's dialog-forming INVITE to a Contact the
// gateway registered (a call to the web).
func (g *Gateway) startCoreCall(in *serverTx, stx *sip.ServerTx) {
	req := in.req
	log := g.log.With(zap.String("method", "INVITE"), zap.String("sip_call_id", callIDOf(req)))
	if req.Contact() == nil {
		// RFC 3261 8.1.1.8: a dialog-forming request carries a Contact.
		_ = in.reply(response(req, 400, "Bad Request", token(10)))
		return
	}
	if res := g.tooBrief(req, token(10)); res != nil {
		_ = in.reply(res)
		return
	}
	b, ok := g.reg.lookup(req.Recipient.User)
	flow := ""
	var replacing *dialogIDs
	switch {
	case ok:
		flow = g.reg.flowOf(b)
	case req.GetHeader("Replaces") != nil:
		// To a call's own Contact: it replaces that call (RFC 3891), and
		// the browser is reached where that call reaches it.
		r, _ := parseReplaces(req.GetHeader("Replaces").Value())
		if _, replacing = g.replacedCall(SideCore, "", r); replacing == nil {
			g.refuse(in, statusErr(481, "Call/Transaction Does Not Exist", errNoBinding), log)
			return
		}
		flow = replacing.flow
	default:
		g.refuse(in, statusErr(404, "Not Found", errNoBinding), log)
		return
	}
	f, ok := g.lookupFlow(flow)
	if !ok {
		g.refuse(in, statusErr(480, "Temporarily Unavailable", errFlowGone), log)
		return
	}
	callee := req.To().Address
	if b != nil {
		callee = b.aor
	}
	slot, why, err := g.takeSlot(callee)
	switch {
	case err != nil:
		g.refuse(in, statusOf(err), log)
		return
	case why != refusalNone:
		g.refuse(in, statusErr(486, "Busy Here", errors.New("limits.calls_per_identity reached")), log)
		return
	}
	c, err := g.newCall(SideCore, f, token(24), callIDOf(req))
	if err != nil {
		g.slots.give(slot)
		g.refuse(in, statusOf(err), log)
		return
	}
	c.holdSlot(slot)
	c.binding, c.replacing = b, replacing
	c.core.receiveInvite(in)
	c.rel.required = hasTag(req, "Require", "100rel")
	// sipgo runs this under the transaction's lock: mark and return.
	if !stx.OnCancel(func(*sip.Request) {
		c.coreCanceled.Store(true)
		c.notify(event{kind: evCoreCancel})
	}) {
		g.giveSlot(c)
		_ = c.media.Close()
		in.final = true // sipgo answered the CANCEL and the INVITE
		return
	}
	g.launch(c, in, log)
}

// launch publishes a fully built call and starts its goroutine.
func (g *Gateway) launch(c *Call, in *serverTx, log *zap.Logger) {
	if err := g.addCall(c); err != nil {
		g.giveSlot(c)
		_ = c.media.Close()
		g.refuse(in, statusOf(err), log)
		return
	}
	g.live.Add(1)
	if !g.goOwned(c.run) {
		g.live.Add(-1)
		g.removeCall(c)
		_ = c.media.Close()
		g.refuse(in, statusErr(503, "Service Unavailable", errDraining), log)
	}
}

// refuse answers a dialog-forming INVITE no call was made for.
func (g *Gateway) refuse(in *serverTx, se *StatusError, log *zap.Logger) {
	log.Info("call refused", zap.Int("status", se.Code), zap.Error(se))
	_ = in.reply(response(in.req, se.Code, se.Reason, token(10)))
}

// start turns the origin leg's INVITE into one on the far leg.
func (c *Call) start() {
	a := c.leg(c.origin)
	b := c.other(a)
	inv := a.invite
	if a.side == SideWeb {
		_ = a.inviteIn.reply(response(inv, 100, "Trying", ""))
	}
	c.from, c.to = inv.From().Address.String(), inv.Recipient.String()
	c.log.Info("call", zap.Stringer("from_leg", a.side), zap.String("from", c.from), zap.String("to", c.to))
	c.g.observer.CallStateChanged(c.info(), StateCalling, c.started)
	var out []byte
	var err error
	if offer := sdpBody(inv); offer != nil {
		a.oa.receive(true, offer)
		out, err = c.convertOffer(a.side, offer)
	} else {
		// Third-party call control (RFC 3725): the far leg gets our offer;
		// its answer gives our offer in the 2xx, answered in the ACK.
		out, err = c.media.OfferTo(b.side.media())
	}
	if err != nil {
		c.fail(mediaStatus(err), EndMediaFailed)
		return
	}
	req := c.originate(b, out)
	tx := &clientTx{leg: b.side, purpose: txInvite, req: req}
	b.invite, b.inviteOut = req, tx
	b.watch(tx)
	b.oa.send(true, out)
	if err := b.tr.send(c, tx); err != nil {
		tx.final = true
		c.fail(statusOf(err), EndTransportError)
		return
	}
	c.arm(timerKey{timerNoAnswer, b.side}, c.g.cfg.Upstream.InviteTimeout)
}

// originate builds the far leg's INVITE from the origin leg's: the far
// leg's own Call-ID, tags, Via and Contact; the same parties. A call to the
// web goes to the browser's registered Contact (over its flow).
func (c *Call) originate(b *leg, sdp []byte) *sip.Request {
	inv := c.other(b).invite
	d := &b.dlg
	d.local, d.localName = *inv.From().Address.Clone(), inv.From().DisplayName
	d.remote, d.remoteName = *inv.To().Address.Clone(), inv.To().DisplayName
	d.remoteTarget = *inv.Recipient.Clone()
	switch {
	case b.side == SideWeb && c.binding != nil:
		d.remote = *c.binding.aor.Clone()
		d.remoteTarget = *c.binding.contact.Address.Clone()
	case b.side == SideWeb && c.replacing != nil:
		d.remote = *c.replacing.webRemote.Clone()
		d.remoteTarget = *c.replacing.webTarget.Clone()
	}
	if b.side == SideCore && c.creds != nil {
		// A token session calls as its token's identity (a click-to-call
		// token: as the pool identity it was given), whatever its From said.
		d.local = *c.caller.Clone()
	}
	req := d.request(sip.INVITE, 0)
	req.AppendHeader(c.contact(b))
	names := inviteHeaders[b.side]
	if b.side == SideWeb {
		names = c.g.webHeaders(names)
	}
	copyHeaders(inv, req, names...)
	if b.side == SideCore && c.origin == SideWeb {
		c.g.assertIdentity(req, c.caller)
		c.g.preloadServiceRoute(req, c.flow, c.caller)
	}
	c.g.rewriteReplaces(c.origin, c.currentFlow(), req)
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	if b.side == SideCore {
		req.AppendHeader(sip.NewHeader("Supported", "100rel, timer"))
		req.AppendHeader(sip.NewHeader("P-Early-Media", "supported"))
		c.askTimer(req)
	}
	setSDP(req, sdp)
	return req
}

// contact is the gateway's Contact on a leg; its user part is the call.
func (c *Call) contact(l *leg) *sip.ContactHeader {
	if l.side == SideCore {
		return c.g.core.contact(c.id)
	}
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: c.id, Host: "imsgate.invalid",
		UriParams: sip.HeaderParams{{K: "transport", V: "ws"}}}, Params: sip.NewParams()}
}

// convertOffer and convertAnswer turn a leg's SDP of the first exchange
// into the other leg's.
func (c *Call) convertOffer(from Side, sdp []byte) ([]byte, error) {
	step, err := c.media.Offer(from.media(), sdp)
	return step.Offer, err
}

func (c *Call) convertAnswer(from Side, sdp []byte) ([]byte, error) {
	step, err := c.media.Answer(from.media(), sdp)
	return step.Answer, err
}

func (c *Call) onResponse(tx *clientTx, res *sip.Response) {
	switch tx.purpose {
	case txInvite:
		c.onInviteResponse(tx, res)
	case txRelay:
		c.onRelayResponse(tx, res)
	case txChange:
		c.onChangeResponse(tx, res)
	case txRefresh:
		c.onRefreshResponse(tx, res)
	default:
		if res.StatusCode >= 200 && !tx.final {
			c.settle(tx)
		}
	}
}

// settle marks one of our transactions answered and lets it go.
func (c *Call) settle(tx *clientTx) {
	tx.final = true
	delete(c.leg(tx.leg).out, tx)
	if tx.stop != nil && tx.leg == SideWeb {
		tx.stop()
	}
}

// onInviteResponse relays the far leg's answers to our INVITE back to the
// origin leg, whichever side that is.
func (c *Call) onInviteResponse(tx *clientTx, res *sip.Response) {
	b := c.leg(tx.leg)
	a := c.other(b)
	code := res.StatusCode
	switch {
	case code < 200:
		if tx.final {
			return
		}
		tx.provisional = true
		if c.cancelPending {
			c.cancelPending = false
			c.cancel(b)
		}
		if c.ending || code == 100 {
			return
		}
		if b.side == SideCore && hasTag(res, "Require", "100rel") && !c.prack(b, res) {
			return // a retransmission of a reliable 18x we acknowledged
		}
		c.relayProvisional(a, b, res)
	case code < 300:
		c.on2xx(a, b, tx, res)
	default:
		if tx.final {
			return
		}
		tx.final = true
		if code == 422 && !c.ending {
			b.tr.ackFailure(b.invite, res)
			if c.retryAfter422(b, res) {
				return
			}
		}
		if challenged(res) && c.creds != nil && b.side == SideCore && !c.ending {
			if c.answerChallenge(b, res) {
				return
			}
			res = refusedCredentials(res)
		}
		c.disarm(timerKey{timerNoAnswer, b.side})
		c.disarm(timerKey{timerCancelWait, b.side})
		b.tr.ackFailure(b.invite, res)
		if c.ending {
			return // the origin leg has its answer already
		}
		c.relayFailure(a, res)
		reason := EndRejected
		if b.side == SideCore && (res.StatusCode == 401 || res.StatusCode == 407) {
			// The core's challenge went to the browser, which answers it
			// with a new INVITE: this one was not a failed call.
			reason = EndChallenged
		}
		c.end(Cause{Reason: reason, By: b.side, Status: res.StatusCode})
	}
}

// relayProvisional passes a 18x on; with SDP it is early media, and the
// origin leg gets its answer now so ICE and DTLS start before the 2xx.
func (c *Call) relayProvisional(a, b *leg, res *sip.Response) {
	if a.side == SideCore && c.coreCanceled.Load() {
		return // sipgo has sent the 487; the CANCEL event is on its way
	}
	b.earlyDialog(res)
	var sdp []byte
	if body := sdpBody(res); body != nil && a.oa.remote != nil { // (without an offer from a: its 2xx carries ours)
		ans, err := c.convertAnswer(b.side, body)
		switch {
		case err != nil:
			c.log.Warn("early media answer unusable", zap.Stringer("leg", b.side), zap.Error(err))
		case b.side == SideCore && !earlyMediaAllowed(res):
			// The network withholds early media: the browser gets the
			// answer with the 2xx.
			b.oa.receive(false, body)
			c.log.Debug("early media not authorised by P-Early-Media")
		default:
			sdp = ans
			b.oa.receive(false, body)
			a.oa.send(false, sdp)
		}
	}
	out := response(a.inviteIn.req, res.StatusCode, res.Reason, a.dlg.localTag)
	out.AppendHeader(c.contact(a))
	setSDP(out, sdp)
	send := a.inviteIn.reply
	if a.side == SideCore {
		send = func(r *sip.Response) error { return c.sendProvisional(a, r) }
	}
	if err := send(out); err != nil {
		c.log.Debug("provisional to origin leg", zap.Error(err))
	}
	c.setState(StateEarly)
}

// on2xx takes a 2xx to our INVITE: the first makes the far leg's dialog
// and answers the origin leg; a retransmission is acknowledged again; a 2xx
// of another fork is acknowledged and ended (RFC 3261 13.2.2.4).
func (c *Call) on2xx(a, b *leg, tx *clientTx, res *sip.Response) {
	tag := tagOf(res.To().Params)
	if b.confirmed {
		if tag == b.dlg.remoteTag {
			if b.ack != nil {
				_ = b.tr.ack(b.ack.Clone())
			}
			return
		}
		if !c.endedForks[tag] {
			c.endFork(b, res)
		}
		return
	}
	tx.final = true
	c.disarm(timerKey{timerNoAnswer, b.side})
	c.disarm(timerKey{timerCancelWait, b.side})
	b.dlg.remoteTag = tag
	b.dlg.remoteTarget = remoteTargetOf(res, b.dlg.remoteTarget)
	b.dlg.routes = routeSet(res, true)
	b.confirmed = true
	b.allowsUpdate = allows(res, sip.UPDATE)
	b.ack = ackOf(b.invite, b.dlg)
	if b.side == SideCore {
		c.agreeTimer(res)
	}
	if err := b.tr.ack(b.ack); err != nil {
		c.log.Warn("ack", zap.Stringer("leg", b.side), zap.Error(err))
	}
	if c.coreCanceled.Load() {
		c.onCoreCancel() // the core cancelled before our 2xx could go
	}
	if c.ending {
		c.sendBye(b) // CANCEL/2xx race: the far leg answered anyway
		return
	}
	var step mediabridge.Step
	err := errNoAnswer
	body := sdpBody(res)
	if body == nil && b.oa.state == offerStable && b.oa.theirs != nil {
		// The answer came in a 18x (RFC 3262: a reliable one, and the 2xx
		// carries none); the origin leg may not have had it yet.
		body = b.oa.theirs
	}
	if body != nil {
		b.oa.receive(false, body)
		step, err = c.media.Answer(b.side.media(), body)
	}
	if err != nil {
		c.fail(mediaStatus(err), EndMediaFailed)
		return
	}
	ans, offers := step.Answer, step.Offer != nil && a.oa.remote == nil
	if offers {
		ans = step.Offer // third-party call control: our offer, answered in the ACK
	}
	out := response(a.inviteIn.req, res.StatusCode, res.Reason, a.dlg.localTag)
	out.AppendHeader(c.contact(a))
	out.AppendHeader(sip.NewHeader("Allow", allowed))
	if a.side == SideCore {
		c.answerTimer(a.invite, out)
	}
	setSDP(out, ans)
	a.oa.send(offers, ans)
	a.okOffers = offers
	if a.side == SideCore && c.holds2xx() {
		c.rel.held = out // sent when the core PRACKs our 18x with its answer
		return
	}
	c.answerOrigin(a, out)
}

// answerOrigin sends the 2xx to the origin leg's INVITE.
func (c *Call) answerOrigin(a *leg, out *sip.Response) {
	// Published before the 2xx leaves: a REFER the browser sends as soon as
	// it has it may name this call.
	c.publishIDs()
	if err := a.inviteIn.reply(out); err != nil {
		c.log.Warn("2xx to origin leg", zap.Stringer("leg", a.side), zap.Error(err))
		c.end(Cause{Reason: EndTransportError, By: SideGateway, Status: out.StatusCode, Err: err})
		return
	}
	a.confirmed = true
	c.awaitAck(a, out)
	c.answered = time.Now()
	c.setState(StateConfirmed)
	c.log.Info("call answered", zap.Stringer("by", c.other(a).side), zap.Int("status", out.StatusCode))
}

// awaitAck keeps our 2xx until its ACK: retransmitted T1, 2T1, … T2 where
// the leg needs it, and the call ends after 64·T1 without one.
func (c *Call) awaitAck(l *leg, ok *sip.Response) {
	l.ok = ok
	if l.tr.retransmits2xx() {
		l.okWait = int64(sip.T1)
		c.arm(timerKey{timerOK, l.side}, sip.T1)
	}
	c.arm(timerKey{timerAckWait, l.side}, 64*sip.T1)
}

// ackOf builds the ACK of a 2xx to our INVITE inv in dialog d: its CSeq
// number and credentials.
func ackOf(inv *sip.Request, d dialog) *sip.Request {
	seq, _ := cseqOf(inv)
	ack := d.request(sip.ACK, seq)
	copyHeaders(inv, ack, "Authorization", "Proxy-Authorization")
	return ack
}

// ackReinvite acknowledges the 2xx of a re-INVITE of ours, keeping the ACK
// for a retransmitted 2xx.
func (c *Call) ackReinvite(l *leg, tx *clientTx) {
	tx.ack = ackOf(tx.req, l.dlg)
	if err := l.tr.ack(tx.ack); err != nil {
		c.log.Warn("ack", zap.Stringer("leg", l.side), zap.Error(err))
	}
}

// pastFinal: a provisional response to a request of ours that needs none,
// or one after its final; a retransmitted 2xx of a re-INVITE gets its ACK
// again (RFC 3261 13.2.2.4).
func (c *Call) pastFinal(l *leg, tx *clientTx, code int) bool {
	if tx.final && code >= 200 && code < 300 && tx.ack != nil {
		_ = l.tr.ack(tx.ack.Clone())
	}
	return code < 200 || tx.final
}

// endFork acknowledges the 2xx of a fork we did not take and ends its
// dialog with a BYE.
func (c *Call) endFork(b *leg, res *sip.Response) {
	d := b.dlg
	d.remoteTag = tagOf(res.To().Params)
	d.remoteTarget = remoteTargetOf(res, d.remoteTarget)
	d.routes = routeSet(res, true)
	_ = b.tr.ack(ackOf(b.invite, d))
	if c.endedForks == nil {
		c.endedForks = map[string]bool{}
	}
	c.endedForks[d.remoteTag] = true
	tx := &clientTx{leg: b.side, purpose: txBye, req: d.request(sip.BYE, 0)}
	b.watch(tx)
	if err := b.tr.send(c, tx); err != nil {
		delete(b.out, tx)
	}
	c.log.Info("2xx from another fork acknowledged and ended", zap.Stringer("leg", b.side), zap.String("tag", d.remoteTag))
}

// relayFailure answers the origin leg's INVITE with the far leg's error,
// with what the caller needs to act on it. The call leaves the tables
// first, so a retried INVITE (after 401/407) finds no stale call.
func (c *Call) relayFailure(a *leg, res *sip.Response) {
	c.g.removeCall(c)
	out := response(a.inviteIn.req, res.StatusCode, res.Reason, a.dlg.localTag)
	names := failureHeaders
	if a.side == SideWeb {
		names = c.g.webHeaders(names)
	}
	copyHeaders(res, out, names...)
	_ = a.inviteIn.reply(out)
}
