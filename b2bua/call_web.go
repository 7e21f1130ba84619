package b2bua

import (
	"context"
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// startWebCall takes a browser's initial INVITE (a call from the web).
func (g *Gateway) startWebCall(f webFlow, inv *sip.Request, log *zap.Logger) {
	g.mu.Lock()
	if existing := g.calls[callIDOf(inv)]; existing != nil && branchOf(existing.web.invite) == branchOf(inv) {
		g.mu.Unlock()
		return // a retransmission of the INVITE we are handling
	}
	g.mu.Unlock()
	c, err := g.newCall(f, callIDOf(inv), token(24), token(12), log)
	if err != nil {
		se := statusOf(err)
		log.Warn("call refused", zap.Int("status", se.Code), zap.Error(err))
		g.replyWeb(f, response(inv, se.Code, se.Reason, token(10)), log)
		return
	}
	c.web.invite = inv
	d := &c.web.dlg
	d.localTag = token(12)
	d.remoteTag = tagOf(inv.From().Params)
	d.local, d.localName = *inv.To().Address.Clone(), inv.To().DisplayName
	d.remote, d.remoteName = *inv.From().Address.Clone(), inv.From().DisplayName
	d.remoteTarget = remoteTargetOf(inv, inv.From().Address)
	d.cseq = 0
	if !g.goOwned(func(ctx context.Context) { c.runFromWeb(ctx) }) {
		c.finishRefused(503, "Service Unavailable")
	}
}

// finishRefused ends a call that never started.
func (c *Call) finishRefused(code int, reason string) {
	c.forget()
	c.replyWeb(c.web.invite, code, reason, nil)
	c.endReason = reason
	c.finish()
}

// runFromWeb drives a call from the browser to the core.
func (c *Call) runFromWeb(ctx context.Context) {
	defer c.finish()
	inv := c.web.invite
	c.log.Info("call from web", zap.String("from", inv.From().Address.String()), zap.String("to", inv.Recipient.String()))
	c.g.replyWeb(c.web.flow, response(inv, 100, "Trying", ""), c.log)

	offer := sdpBody(inv)
	if offer == nil {
		c.fail(statusErr(488, "Not Acceptable Here", errors.New("INVITE without SDP offer")))
		return
	}
	coreOffer, err := c.media.WebOffer(offer)
	if err != nil {
		c.fail(mediaStatus(err))
		return
	}

	req := c.buildCoreInvite(inv, coreOffer)
	c.core.invite = req
	tx, err := c.g.core.client.TransactionRequest(ctx, req)
	if err != nil {
		c.fail(statusErr(503, "Service Unavailable", err))
		return
	}
	c.core.clientTx = tx
	defer tx.Terminate()
	if c.awaitCoreAnswer(ctx, tx) {
		c.confirmed(ctx)
	}
}

// buildCoreInvite re-originates the browser's INVITE toward the core: own
// Call-ID, tags, Via and Contact; the browser's identity and credentials.
func (c *Call) buildCoreInvite(web *sip.Request, sdp []byte) *sip.Request {
	d := &c.core.dlg
	d.local, d.localName = *web.From().Address.Clone(), web.From().DisplayName
	d.remote, d.remoteName = *web.To().Address.Clone(), web.To().DisplayName
	d.remoteTarget = *web.Recipient.Clone()
	req := d.request(sip.INVITE, 0)
	req.AppendHeader(c.g.core.contact(c.id))
	// Digest pass-through: the browser answered the core's challenge for
	// this Request-URI, which is kept as is (TS 24.371 pass-through mode).
	copyHeaders(web, req, "Authorization", "Proxy-Authorization", "P-Preferred-Identity", "Privacy", "Subject")
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"))
	setSDP(req, sdp)
	c.g.core.prepareOutOfDialog(req)
	return req
}

// awaitCoreAnswer relays the core's responses to the browser until the call
// is answered (true) or has failed (false).
func (c *Call) awaitCoreAnswer(ctx context.Context, tx sip.ClientTransaction) bool {
	timeout := time.NewTimer(c.g.cfg.Upstream.InviteTimeout)
	defer timeout.Stop()
	canceled := false
	// RFC 3261 9.1: no CANCEL before a provisional response; one asked for
	// earlier waits for it.
	provisional, cancelPending := false, false
	cancel := func() {
		if provisional {
			c.cancelCore(ctx)
		} else {
			cancelPending = true
		}
	}
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode < 200 {
				provisional = true
				if cancelPending {
					cancelPending = false
					c.cancelCore(ctx)
				}
			}
			switch {
			case res.StatusCode == 100:
			case res.StatusCode < 200:
				if !canceled {
					c.coreProvisional(res)
				}
			case res.StatusCode < 300:
				if canceled {
					// CANCEL/200 race: the core answered anyway. Confirm and end it.
					c.ackCore(res)
					c.endReason = "canceled by web"
					c.byeCore(ctx)
					return false
				}
				return c.coreAnswered(ctx, res)
			default:
				if !canceled {
					c.coreFailed(res)
				}
				return false
			}
		case <-tx.Done():
			if !canceled {
				err := tx.Err()
				if errors.Is(err, sip.ErrTransactionTimeout) {
					err = errTimeout
				}
				c.fail(statusErr(statusOf(err).Code, statusOf(err).Reason, err))
			}
			return false
		case ev := <-c.events:
			switch ev.kind {
			case evWebRequest:
				switch ev.req.Method {
				case sip.CANCEL:
					c.g.replyWeb(c.web.flow, response(ev.req, 200, "OK", c.web.dlg.localTag), c.log)
					if !canceled {
						canceled = true
						cancel()
						c.forget()
						c.replyWeb(c.web.invite, 487, "Request Terminated", nil)
						c.endReason = "canceled by web"
					}
				case sip.ACK:
				default:
					c.replyWeb(ev.req, 491, "Request Pending", nil)
				}
			case evFlowClosed:
				if !canceled {
					canceled = true
					cancel()
					c.endReason = "websocket closed before answer"
				}
			case evShutdown:
				if !canceled {
					cancel()
					c.fail(statusErr(503, "Service Unavailable", errDraining))
				}
				return false
			case evCoreRequest:
				c.rejectLate(ev)
			}
		case <-timeout.C:
			if !canceled {
				canceled = true
				cancel()
				c.fail(statusErr(408, "Request Timeout", errTimeout))
			}
		case <-ctx.Done():
			cancel()
			return false
		}
	}
}

// coreProvisional relays a 18x; with SDP it is early media, and the browser
// gets its answer now so ICE and DTLS start before the 200.
func (c *Call) coreProvisional(res *sip.Response) {
	c.state = stateEarly
	var webSDP []byte
	if sdp := sdpBody(res); sdp != nil {
		ans, err := c.media.CoreAnswer(sdp)
		if err != nil {
			c.log.Warn("early media answer unusable", zap.Error(err))
		} else {
			webSDP = ans
		}
	}
	c.replyWeb(c.web.invite, res.StatusCode, res.Reason, webSDP)
}

// coreAnswered completes both legs on the core's 2xx.
func (c *Call) coreAnswered(ctx context.Context, res *sip.Response) bool {
	c.ackCore(res)
	sdp := sdpBody(res)
	if sdp == nil {
		c.endReason = "core answer without SDP"
		c.byeCore(ctx)
		c.fail(statusErr(488, "Not Acceptable Here", errors.New("2xx without SDP answer")))
		return false
	}
	ans, err := c.media.CoreAnswer(sdp)
	if err != nil {
		c.endReason = "core answer unusable"
		c.byeCore(ctx)
		c.fail(mediaStatus(err))
		return false
	}
	c.replyWeb(c.web.invite, res.StatusCode, res.Reason, ans)
	c.state = stateConfirmed
	c.answered = time.Now()
	c.log.Info("call answered", zap.Int("status", res.StatusCode))
	return true
}

// ackCore takes the dialog from the core's 2xx and sends its ACK (RFC 3261
// 13.2.2.4).
func (c *Call) ackCore(res *sip.Response) {
	d := &c.core.dlg
	d.remoteTag = tagOf(res.To().Params)
	d.remoteTarget = remoteTargetOf(res, d.remoteTarget)
	d.routes = routeSet(res, true)
	seq, _ := cseqOf(c.core.invite)
	ack := d.request(sip.ACK, seq)
	copyHeaders(c.core.invite, ack, "Authorization", "Proxy-Authorization")
	c.g.core.prepareInDialog(ack)
	if err := c.g.core.client.WriteRequest(ack); err != nil {
		c.log.Warn("ack to core", zap.Error(err))
	}
}

// coreFailed maps the core's final error back to the browser, challenges
// included (digest pass-through).
func (c *Call) coreFailed(res *sip.Response) {
	c.forget()
	out := response(c.web.invite, res.StatusCode, res.Reason, c.web.dlg.localTag)
	copyHeaders(res, out, "WWW-Authenticate", "Proxy-Authenticate", "Retry-After", "Warning", "Reason", "Unsupported")
	c.g.replyWeb(c.web.flow, out, c.log)
	c.endReason = res.Short()
}

// fail answers the browser's INVITE with an error.
func (c *Call) fail(se *StatusError) {
	c.forget()
	c.log.Info("call failed", zap.Int("status", se.Code), zap.Error(se))
	res := response(c.web.invite, se.Code, se.Reason, c.web.dlg.localTag)
	if se.Err != nil && se.Code == 488 {
		res.AppendHeader(sip.NewHeader("Warning", `399 imsgate "`+sanitizeWarning(se.Err.Error())+`"`))
	}
	c.g.replyWeb(c.web.flow, res, c.log)
	if c.endReason == "" {
		c.endReason = se.Error()
	}
}

// cancelCore sends CANCEL for our pending INVITE to the core.
func (c *Call) cancelCore(ctx context.Context) {
	if c.core.invite == nil {
		return
	}
	req := cancelOf(c.core.invite)
	c.g.core.prepareOutOfDialog(req)
	inv := c.core.invite
	req.SetDestination(inv.Destination())
	log := c.log
	c.g.goOwned(func(gctx context.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		if _, err := c.g.core.do(ctx, req); err != nil {
			log.Warn("cancel to core", zap.Error(err))
		}
	})
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
