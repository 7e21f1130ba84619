package b2bua

import (
	"context"
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// onCoreInvite takes an INVITE from the core to a registered Contact of the
// gateway (a call to the web). sipgo terminates the transaction when this
// handler returns, so it waits until the INVITE has its final response.
func (g *Gateway) onCoreInvite(req *sip.Request, tx sip.ServerTransaction) {
	log := g.log.With(zap.String("method", "INVITE"), zap.String("sip_call_id", callIDOf(req)))
	if req.To() == nil || req.From() == nil {
		_ = tx.Respond(response(req, 400, "Bad Request", ""))
		return
	}
	if tagOf(req.To().Params) != "" {
		g.onCoreInDialog(req, tx)
		return
	}
	refuse := func(se *StatusError) {
		log.Info("call to web refused", zap.Int("status", se.Code), zap.Error(se))
		_ = tx.Respond(response(req, se.Code, se.Reason, token(10)))
	}
	b, ok := g.reg.lookup(req.Recipient.User)
	if !ok {
		refuse(statusErr(404, "Not Found", errNoBinding))
		return
	}
	f, ok := g.lookupFlow(b.flow)
	if !ok {
		refuse(statusErr(480, "Temporarily Unavailable", errFlowGone))
		return
	}
	c, err := g.newCall(f, token(24), callIDOf(req), token(12), log)
	if err != nil {
		refuse(statusOf(err))
		return
	}
	c.core.invite = req
	c.core.serverTx = tx
	d := &c.core.dlg
	d.remoteTag = tagOf(req.From().Params)
	d.local, d.localName = *req.To().Address.Clone(), req.To().DisplayName
	d.remote, d.remoteName = *req.From().Address.Clone(), req.From().DisplayName
	d.remoteTarget = remoteTargetOf(req, req.From().Address)
	d.routes = routeSet(req, false)
	d.cseq = 0
	tx.OnCancel(func(*sip.Request) { c.enqueue(event{kind: evCoreCancel}) })
	if !g.goOwned(func(ctx context.Context) { c.runFromCore(ctx, b) }) {
		refuse(statusErr(503, "Service Unavailable", errDraining))
		c.finish()
		return
	}
	select {
	case <-c.inviteDone:
	case <-c.done:
	}
}

// onCoreInDialog hands an in-dialog request from the core to its call: the
// To tag is ours, whichever side began the call.
func (g *Gateway) onCoreInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() == nil {
		_ = tx.Respond(response(req, 400, "Bad Request", ""))
		return
	}
	c := g.callByCoreID(coreKey(callIDOf(req), tagOf(req.To().Params)))
	if c == nil {
		if !req.IsAck() {
			_ = tx.Respond(response(req, 481, "Call/Transaction Does Not Exist", ""))
		}
		return
	}
	ev := event{kind: evCoreRequest, req: req, tx: tx, handled: make(chan struct{})}
	c.enqueue(ev)
	if req.IsAck() {
		return
	}
	select {
	case <-ev.handled:
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = tx.Respond(response(req, 500, "Server Internal Error", c.core.dlg.localTag))
	}
}

// runFromCore drives a call from the core to the browser.
func (c *Call) runFromCore(ctx context.Context, b *binding) {
	defer c.finish()
	inv := c.core.invite
	c.log.Info("call to web", zap.String("from", inv.From().Address.String()), zap.String("aor", b.aor.String()))
	offer := sdpBody(inv)
	if offer == nil {
		c.failCore(statusErr(488, "Not Acceptable Here", errors.New("INVITE without SDP offer")))
		return
	}
	webOffer, err := c.media.CoreOffer(offer)
	if err != nil {
		c.failCore(mediaStatus(err))
		return
	}
	req := c.buildWebInvite(b, webOffer)
	c.web.invite = req
	tx, err := c.g.sendWeb(c.web.flow, req)
	if err != nil {
		c.failCore(statusErr(480, "Temporarily Unavailable", err))
		return
	}
	c.web.tx = tx
	if c.awaitWebAnswer(ctx, tx) {
		c.confirmed(ctx)
	}
}

// buildWebInvite makes the INVITE toward the browser: addressed to its
// registered Contact, carried on its flow (never resolved from .invalid).
func (c *Call) buildWebInvite(b *binding, sdp []byte) *sip.Request {
	core := c.core.invite
	d := &c.web.dlg
	d.localTag = token(12)
	d.local, d.localName = *core.From().Address.Clone(), core.From().DisplayName
	d.remote, d.remoteName = *b.aor.Clone(), core.To().DisplayName
	d.remoteTarget = *b.contact.Address.Clone()
	req := d.request(sip.INVITE, 0)
	req.PrependHeader(webVia(c.web.flow))
	req.AppendHeader(c.webContact())
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"))
	copyHeaders(core, req, "P-Asserted-Identity", "Privacy", "Subject", "Alert-Info")
	setSDP(req, sdp)
	return req
}

// awaitWebAnswer relays the browser's responses to the core until the call is
// answered (true) or has failed (false).
func (c *Call) awaitWebAnswer(ctx context.Context, tx *webClientTx) bool {
	timeout := time.NewTimer(c.g.cfg.Upstream.InviteTimeout)
	defer timeout.Stop()
	canceled := false
	// After a CANCEL the browser's 487 (or a racing 200) is awaited a bounded time.
	var giveUp <-chan time.Time
	for {
		select {
		case <-giveUp:
			c.log.Warn("browser did not answer cancel")
			return false
		case res := <-tx.responses:
			switch {
			case res.StatusCode == 100:
			case res.StatusCode < 200:
				if !canceled {
					c.webProvisional(res)
				}
			case res.StatusCode < 300:
				c.web.dlg.remoteTag = tagOf(res.To().Params)
				c.web.dlg.remoteTarget = remoteTargetOf(res, c.web.dlg.remoteTarget)
				c.ackWeb()
				if canceled {
					// CANCEL/200 race: the browser answered anyway; end its leg.
					c.byeWeb(ctx)
					return false
				}
				return c.webAnswered(ctx, res)
			default:
				c.ackWebFailure(res)
				if !canceled {
					c.failCoreWith(res)
				}
				return false
			}
		case <-tx.failed:
			if !canceled {
				c.failCore(statusErr(480, "Temporarily Unavailable", errFlowGone))
			}
			return false
		case ev := <-c.events:
			switch ev.kind {
			case evCoreCancel:
				// sipgo has answered the CANCEL and the INVITE (487).
				c.forget()
				c.inviteAnswered()
				canceled = true
				giveUp = time.After(5 * time.Second)
				c.endReason = "canceled by core"
				c.cancelWeb()
			case evFlowClosed:
				c.failCore(statusErr(480, "Temporarily Unavailable", errFlowGone))
				return false
			case evShutdown:
				c.cancelWeb()
				c.failCore(statusErr(503, "Service Unavailable", errDraining))
				return false
			case evCoreRequest:
				c.rejectLate(ev)
			case evWebRequest:
				if !ev.req.IsAck() {
					c.replyWeb(ev.req, 491, "Request Pending", nil)
				}
			}
		case <-timeout.C:
			if !canceled {
				canceled = true
				giveUp = time.After(5 * time.Second)
				c.cancelWeb()
				c.failCore(statusErr(480, "Temporarily Unavailable", errTimeout))
			}
		case <-ctx.Done():
			return false
		}
	}
}

// webProvisional relays a browser 18x to the core; with SDP (early media)
// the core gets its answer now.
func (c *Call) webProvisional(res *sip.Response) {
	c.state = stateEarly
	var coreSDP []byte
	if sdp := sdpBody(res); sdp != nil {
		ans, err := c.media.WebAnswer(sdp)
		if err != nil {
			c.log.Warn("early media answer unusable", zap.Error(err))
		} else {
			coreSDP = ans
		}
	}
	c.respondCore(res.StatusCode, res.Reason, coreSDP, nil)
}

func (c *Call) webAnswered(ctx context.Context, res *sip.Response) bool {
	sdp := sdpBody(res)
	if sdp == nil {
		c.endReason = "browser answer without SDP"
		c.byeWeb(ctx)
		c.failCore(statusErr(488, "Not Acceptable Here", errors.New("2xx without SDP answer")))
		return false
	}
	ans, err := c.media.WebAnswer(sdp)
	if err != nil {
		c.endReason = "browser answer unusable"
		c.byeWeb(ctx)
		c.failCore(mediaStatus(err))
		return false
	}
	c.respondCore(200, "OK", ans, nil)
	c.state = stateConfirmed
	c.answered = time.Now()
	c.log.Info("call answered by web")
	return true
}

// ackWeb acknowledges the browser's 2xx.
func (c *Call) ackWeb() {
	seq, _ := cseqOf(c.web.invite)
	ack := c.web.dlg.request(sip.ACK, seq)
	ack.PrependHeader(webVia(c.web.flow))
	if _, err := c.g.sendWeb(c.web.flow, ack); err != nil {
		c.log.Debug("ack to browser", zap.Error(err))
	}
}

// ackWebFailure acknowledges a browser's error response (RFC 3261
// 17.1.1.3: same branch as the INVITE).
func (c *Call) ackWebFailure(res *sip.Response) {
	if _, err := c.g.sendWeb(c.web.flow, ackOfFailure(c.web.invite, res)); err != nil {
		c.log.Debug("ack to browser", zap.Error(err))
	}
}

// cancelWeb sends CANCEL for our INVITE to the browser; its 487 arrives on
// the INVITE's transaction and is acknowledged there.
func (c *Call) cancelWeb() {
	req := cancelOf(c.web.invite)
	tx, err := c.g.sendWeb(c.web.flow, req)
	if err != nil {
		return
	}
	// The CANCEL's own 200 needs no action.
	c.g.endWebTx(tx)
}

// failCore answers the core's INVITE with an error.
func (c *Call) failCore(se *StatusError) {
	c.forget()
	if c.endReason == "" {
		c.endReason = se.Error()
	}
	select {
	case <-c.inviteDone:
		return // already answered (CANCEL)
	default:
	}
	c.log.Info("call to web failed", zap.Int("status", se.Code), zap.Error(se))
	c.respondCore(se.Code, se.Reason, nil, nil)
}

// failCoreWith relays the browser's final error to the core.
func (c *Call) failCoreWith(res *sip.Response) {
	c.forget()
	c.endReason = res.Short()
	select {
	case <-c.inviteDone:
		return
	default:
	}
	c.respondCore(res.StatusCode, res.Reason, nil, res, "Retry-After", "Warning", "Reason")
}
