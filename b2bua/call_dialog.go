package b2bua

import (
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/presence"
)

// relayHeaders travel with an in-dialog request to the other leg.
var relayHeaders = []string{"Content-Type", "Info-Package", "Event", "Subscription-State", "Reason", "RAck",
	"Refer-To", "Referred-By", "Refer-Sub", "Target-Dialog"}

// responseHeaders travel with the final response of a relayed request.
var responseHeaders = []string{"Content-Type", "WWW-Authenticate", "Proxy-Authenticate", "Retry-After", "Warning",
	"Reason", "Unsupported", "Require", "Allow", "Accept", "Min-Expires"}

// onRequest handles a request a leg sent within the call, whichever leg.
func (c *Call) onRequest(in *serverTx) {
	x := c.leg(in.leg)
	y := c.other(x)
	req := in.req
	switch req.Method {
	case sip.ACK:
		c.onAck(x, req)
		in.releaseNow()
		return
	case sip.CANCEL:
		c.onCancel(x, in)
		return
	}
	switch {
	case c.ending:
		_ = in.reply(response(req, 481, "Call/Transaction Does Not Exist", x.dlg.localTag))
		return
	case !x.dlg.acceptCSeq(req):
		// RFC 3261 12.2.2: a CSeq lower than the last one is out of order.
		_ = in.reply(response(req, 500, "Server Internal Error", x.dlg.localTag))
		return
	case len(x.in) >= maxPendingPerLeg:
		res := response(req, 503, "Service Unavailable", x.dlg.localTag)
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
		_ = in.reply(res)
		return
	}
	switch req.Method {
	case sip.BYE:
		_ = in.reply(response(req, 200, "OK", x.dlg.localTag))
		c.end(Cause{Reason: EndHangup, By: x.side})
	case sip.INVITE, sip.UPDATE:
		c.onSessionRequest(x, in)
	case sip.OPTIONS:
		// A keepalive or capability query: ours to answer, on its own leg.
		_ = in.reply(presence.Capabilities(response(req, 200, "OK", x.dlg.localTag)))
	case sip.PRACK:
		if x.side == SideCore && c.rel.required {
			c.onPrack(x, in) // of our own reliable 18x
		} else {
			c.relay(x, y, in)
		}
	case sip.INFO:
		if !c.onDTMFInfo(x, in) {
			c.relay(x, y, in)
		}
	case sip.MESSAGE, sip.NOTIFY, sip.REFER:
		c.relay(x, y, in)
	default:
		res := response(req, 501, "Not Implemented", x.dlg.localTag)
		res.AppendHeader(sip.NewHeader("Allow", allowed))
		_ = in.reply(res)
	}
}

// relay carries an in-dialog request of leg x to leg y; its final response
// comes back the same way (onRelayResponse).
func (c *Call) relay(x, y *leg, in *serverTx) { c.relayAs(x, y, in, "", nil) }

// relayAs is relay with the body replaced by one of contentType, when
// body is not nil (a digit in the form the other side takes).
func (c *Call) relayAs(x, y *leg, in *serverTx, contentType string, body []byte) {
	if y.dlg.remoteTag == "" {
		// No dialog on the other leg yet.
		_ = in.reply(response(in.req, 481, "Call/Transaction Does Not Exist", x.dlg.localTag))
		return
	}
	out := y.dlg.request(in.req.Method, 0)
	copyHeaders(in.req, out, relayHeaders...)
	if in.req.Method == sip.REFER {
		// A transfer target given by a dialog of ours is named on the
		// other side by that call's other leg.
		c.g.rewriteReplaces(x.side, c.currentFlow(), out)
		out.AppendHeader(c.contact(y)) // REFER is a target refresh request (RFC 3515 §2.4.1)
	}
	if body != nil {
		out.RemoveHeader("Content-Type")
		out.AppendHeader(sip.NewHeader("Content-Type", contentType))
	} else {
		body = in.req.Body()
	}
	out.SetBody(body)
	tx := &clientTx{leg: y.side, purpose: txRelay, req: out, relay: in}
	x.track(in)
	y.watch(tx)
	if err := y.tr.send(c, tx); err != nil {
		delete(x.in, in)
		delete(y.out, tx)
		se := statusOf(err)
		_ = in.reply(response(in.req, se.Code, se.Reason, x.dlg.localTag))
	}
}

func (c *Call) onRelayResponse(tx *clientTx, res *sip.Response) {
	if res.StatusCode < 200 || tx.final {
		return
	}
	c.settle(tx)
	in := tx.relay
	x := c.leg(in.leg)
	delete(x.in, in)
	out := response(in.req, res.StatusCode, res.Reason, x.dlg.localTag)
	copyHeaders(res, out, responseHeaders...)
	out.SetBody(res.Body())
	_ = in.reply(out)
	// RFC 5057 5.1: 481 and 408 to a request in a dialog end the dialog.
	switch res.StatusCode {
	case 481:
		c.end(Cause{Reason: EndRejected, By: tx.leg, Status: 481})
	case 408:
		c.end(Cause{Reason: EndTimeout, By: tx.leg, Status: 408})
	}
}

// onTxFailed: one of our requests got no final response (timeout, flow or
// transport gone).
func (c *Call) onTxFailed(tx *clientTx, err error, webTimeout bool) {
	if tx.final || (webTimeout && tx.purpose == txInvite && tx.provisional) {
		return // answered, or ringing (bounded by upstream.invite_timeout)
	}
	if err == nil {
		err = errTimeout
	}
	c.settle(tx)
	if tx.stop != nil {
		tx.stop()
	}
	se := statusOf(err)
	reason := EndTransportError
	if se.Code == 408 {
		reason = EndTimeout
	}
	switch tx.purpose {
	case txInvite:
		c.disarm(timerKey{timerNoAnswer, tx.leg})
		c.disarm(timerKey{timerCancelWait, tx.leg})
		if !c.ending {
			c.fail(se, reason)
		}
	case txRelay:
		in := tx.relay
		x := c.leg(in.leg)
		delete(x.in, in)
		_ = in.reply(response(in.req, se.Code, se.Reason, x.dlg.localTag))
		if se.Code == 408 && !(tx.leg == SideWeb && c.detached) {
			c.end(Cause{Reason: EndTimeout, By: tx.leg, Status: 408, Err: err})
		}
	case txChange:
		c.onChangeFailed(tx, se)
	case txRefresh:
		c.refreshRefused(tx)
		c.end(Cause{Reason: reason, By: SideCore, Status: se.Code, Err: err})
	}
}

// onAck takes the ACK of our 2xx: its retransmissions stop.
func (c *Call) onAck(x *leg, req *sip.Request) {
	if x.ok == nil {
		return
	}
	if seq, _ := cseqOf(req); seq != cseqNo(x.ok) {
		return
	}
	x.ok = nil
	c.disarm(timerKey{timerOK, x.side})
	c.disarm(timerKey{timerAckWait, x.side})
	if x.okOffers {
		x.okOffers = false
		c.onAckAnswer(x, sdpBody(req))
	}
	if in := c.waiting; in != nil {
		c.waiting = nil
		w := c.leg(in.leg)
		delete(w.in, in)
		c.onSessionRequest(w, in)
	}
}

// onAckAnswer takes the answer an ACK carries to the offer we made in a
// 2xx (an offerless re-INVITE, RFC 3264 §4). If it changes what the other
// leg must hear, the other leg gets an offer of ours.
func (c *Call) onAckAnswer(x *leg, body []byte) {
	if body == nil {
		// RFC 3261 14.1: no answer; the session stays as it was.
		c.media.Rollback(x.side.media())
		x.oa.refuse()
		c.log.Info("ACK without the answer to our offer", zap.Stringer("leg", x.side))
		return
	}
	x.oa.receive(false, body)
	step, err := c.media.Answer(x.side.media(), body)
	if err != nil {
		c.media.Rollback(x.side.media())
		x.oa.refuse()
		c.log.Warn("answer in ACK unusable", zap.Stringer("leg", x.side), zap.Error(err))
		return
	}
	if step.Offer == nil {
		return
	}
	if y := c.other(x); !c.inviteBusy(y) {
		c.startChange(&sessionChange{method: sip.INVITE, offer: step.Offer}, y)
		return
	}
	c.media.Rollback(c.other(x).side.media())
	c.log.Info("the other leg is in an INVITE; it hears of the change with its next one", zap.Stringer("leg", x.side))
}

func cseqNo(msg sip.Message) uint32 {
	n, _ := cseqOf(msg)
	return n
}

// onCancel takes a browser's CANCEL of its INVITE (the core's CANCEL is
// matched by sipgo, which answers it: onCoreCancel).
func (c *Call) onCancel(x *leg, in *serverTx) {
	inv := x.inviteIn
	if inv == nil || branchOf(inv.req) != branchOf(in.req) {
		_ = in.reply(response(in.req, 481, "Call/Transaction Does Not Exist", ""))
		return
	}
	_ = in.reply(response(in.req, 200, "OK", x.dlg.localTag))
	if inv.final {
		return // too late: the INVITE has its answer
	}
	_ = inv.reply(response(inv.req, 487, "Request Terminated", x.dlg.localTag))
	c.end(Cause{Reason: EndCanceled, By: x.side, Status: 487})
}

func (c *Call) onCoreCancel() {
	inv := c.core.inviteIn
	if inv == nil || inv.final {
		return
	}
	inv.final = true // sipgo answered 487
	inv.releaseNow()
	c.end(Cause{Reason: EndCanceled, By: SideCore, Status: 487})
}

// sendBye ends a leg's dialog; its answer is not waited for.
func (c *Call) sendBye(l *leg) {
	if l.byeSent {
		return
	}
	l.byeSent = true
	tx := &clientTx{leg: l.side, purpose: txBye, req: l.dlg.request(sip.BYE, 0)}
	l.watch(tx)
	if err := l.tr.send(c, tx); err != nil {
		delete(l.out, tx)
		c.log.Debug("bye", zap.Stringer("leg", l.side), zap.Error(err))
	}
}

// cancel cancels our INVITE on a leg, once it had a provisional response
// (RFC 3261 9.1); its final response is awaited 64·T1 at most.
func (c *Call) cancel(l *leg) {
	tx := l.inviteOut
	if !tx.provisional {
		c.cancelPending = true
		return
	}
	req := cancelOf(l.invite)
	req.SetDestination(l.invite.Destination())
	req.SetTransport(l.invite.Transport())
	req.Laddr = l.invite.Laddr
	ctx := &clientTx{leg: l.side, purpose: txCancel, req: req}
	l.watch(ctx)
	if err := l.tr.send(c, ctx); err != nil {
		delete(l.out, ctx)
		c.log.Debug("cancel", zap.Stringer("leg", l.side), zap.Error(err))
	}
	c.arm(timerKey{timerCancelWait, l.side}, 64*sip.T1)
}
