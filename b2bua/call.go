package b2bua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// Call owns its two legs and its media session. One goroutine (run) owns
// the call's state; SIP handlers and flow callbacks only enqueue events.
type Call struct {
	id     string
	g      *Gateway
	log    *zap.Logger
	web    webLeg
	core   coreLeg
	media  *mediabridge.Session
	events chan event
	done   chan struct{}

	// inviteDone is closed once the core's INVITE (call to the web) has its
	// final response, so the sipgo handler holding it can return.
	inviteDone chan struct{}

	state     callState
	started   time.Time
	answered  time.Time
	endReason string
}

// webLeg is the browser side.
type webLeg struct {
	flow   webFlow
	dlg    dialog
	invite *sip.Request // the browser's INVITE, or ours to the browser
	tx     *webClientTx // ours to the browser
}

// coreLeg is the IMS/PBX side.
type coreLeg struct {
	dlg      dialog
	invite   *sip.Request // ours to the core, or the core's
	clientTx sip.ClientTransaction
	serverTx sip.ServerTransaction
}

type callState int

const (
	stateUnknown callState = iota
	stateCalling
	stateEarly
	stateConfirmed
	stateEnded
)

func (s callState) String() string {
	switch s {
	case stateCalling:
		return "calling"
	case stateEarly:
		return "early"
	case stateConfirmed:
		return "confirmed"
	case stateEnded:
		return "ended"
	}
	return "unknown"
}

type eventKind int

const (
	evUnknown     eventKind = iota
	evWebRequest            // ACK, CANCEL, BYE, INFO... from the browser
	evCoreRequest           // BYE, ACK, INFO... from the core
	evCoreCancel            // the core cancelled its INVITE
	evFlowClosed            // the browser's WebSocket closed
	evShutdown              // the gateway is stopping
)

type event struct {
	kind eventKind
	req  *sip.Request
	tx   sip.ServerTransaction
	// handled is closed once a core request has been answered, so the sipgo
	// handler that holds its transaction can return.
	handled chan struct{}
}

// newCall registers a call. The core leg is keyed by Call-ID and our tag:
// a core that forks one INVITE to several browsers sends the same Call-ID to
// each, and our tag tells the dialogs apart.
func (g *Gateway) newCall(f webFlow, webCallID, coreCallID, coreTag string, log *zap.Logger) (*Call, error) {
	c := &Call{
		id:         token(12),
		g:          g,
		events:     make(chan event, 32),
		done:       make(chan struct{}),
		inviteDone: make(chan struct{}),
		state:      stateCalling,
		started:    time.Now(),
	}
	c.web.flow = f
	c.web.dlg.callID = webCallID
	c.core.dlg.callID = coreCallID
	c.core.dlg.localTag = coreTag
	c.log = log.With(zap.String("call_id", c.id), zap.String("web_sip_call_id", webCallID), zap.String("core_sip_call_id", coreCallID))
	ms, err := g.media.NewSession(c.log)
	if err != nil {
		return nil, fmt.Errorf("media session: %w", err)
	}
	c.media = ms
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining || g.ctx.Err() != nil {
		ms.Close()
		return nil, errDraining
	}
	if _, dup := g.calls[webCallID]; dup {
		ms.Close()
		return nil, statusErr(482, "Loop Detected", errors.New("a call with this Call-ID is in progress"))
	}
	g.calls[webCallID] = c
	g.coreIDs[coreKey(coreCallID, coreTag)] = c
	return c, nil
}

func coreKey(callID, localTag string) string { return callID + "|" + localTag }

// enqueue hands an event to the call's goroutine; it never blocks past the
// call's end.
func (c *Call) enqueue(ev event) {
	select {
	case c.events <- ev:
	case <-c.done:
		if ev.handled != nil {
			close(ev.handled)
		}
	}
}

// forget removes the call from the gateway's tables; done before the last
// response so a retried request (after 401/407) finds no stale call.
func (c *Call) forget() {
	c.g.mu.Lock()
	if c.g.calls[c.web.dlg.callID] == c {
		delete(c.g.calls, c.web.dlg.callID)
	}
	if key := coreKey(c.core.dlg.callID, c.core.dlg.localTag); c.g.coreIDs[key] == c {
		delete(c.g.coreIDs, key)
	}
	c.g.mu.Unlock()
}

// finish releases everything the call holds and logs its summary.
func (c *Call) finish() {
	c.forget()
	c.state = stateEnded
	if err := c.media.Close(); err != nil {
		c.log.Warn("media close", zap.Error(err))
	}
	st := c.media.Stats()
	var talk time.Duration
	if !c.answered.IsZero() {
		talk = time.Since(c.answered)
	}
	c.log.Info("call ended", zap.String("reason", c.endReason), zap.Duration("dur", time.Since(c.started)),
		zap.Duration("talk", talk), zap.Any("media", st))
	c.g.endWebTx(c.web.tx)
	close(c.done)
	c.inviteAnswered()
	// Answer what is still queued so no sipgo handler waits on us.
	for {
		select {
		case ev := <-c.events:
			c.rejectLate(ev)
		default:
			return
		}
	}
}

func (c *Call) rejectLate(ev event) {
	switch ev.kind {
	case evCoreRequest:
		if !ev.req.IsAck() {
			_ = ev.tx.Respond(response(ev.req, 481, "Call/Transaction Does Not Exist", c.core.dlg.localTag))
		}
		if ev.handled != nil {
			close(ev.handled)
		}
	case evWebRequest:
		if !ev.req.IsAck() {
			c.g.replyWeb(c.web.flow, response(ev.req, 481, "Call/Transaction Does Not Exist", c.web.dlg.localTag), c.log)
		}
	}
}

// replyWeb answers a browser request with our web-leg tag.
func (c *Call) replyWeb(req *sip.Request, code int, reason string, sdp []byte) *sip.Response {
	res := response(req, code, reason, c.web.dlg.localTag)
	if code >= 101 && code < 300 && req.IsInvite() {
		res.AppendHeader(c.webContact())
	}
	setSDP(res, sdp)
	c.g.replyWeb(c.web.flow, res, c.log)
	return res
}

// webContact is the gateway's Contact toward the browser.
func (c *Call) webContact() *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: c.id, Host: "imsgate.invalid",
		UriParams: sip.HeaderParams{{K: "transport", V: "ws"}}}, Params: sip.NewParams()}
}

// respondCore answers the core's INVITE (call to the web).
func (c *Call) respondCore(code int, reason string, sdp []byte, extra sip.Message, headers ...string) {
	res := response(c.core.invite, code, reason, c.core.dlg.localTag)
	if code >= 101 && code < 300 {
		res.AppendHeader(c.g.core.contact(c.id))
	}
	if extra != nil {
		copyHeaders(extra, res, headers...)
	}
	setSDP(res, sdp)
	if err := c.core.serverTx.Respond(res); err != nil {
		c.log.Warn("respond to core", zap.Int("status", code), zap.Error(err))
	}
	if code >= 200 {
		c.inviteAnswered()
	}
}

// inviteAnswered releases the sipgo handler holding the core's INVITE.
func (c *Call) inviteAnswered() {
	select {
	case <-c.inviteDone:
	default:
		close(c.inviteDone)
	}
}

// mediaStatus maps a media error to the SIP status the offerer gets.
func mediaStatus(err error) *StatusError {
	switch {
	case errors.Is(err, mediabridge.ErrNoCommonCodec):
		return statusErr(488, "Not Acceptable Here", err)
	case errors.Is(err, mediabridge.ErrBadSDP):
		return statusErr(488, "Not Acceptable Here", err)
	}
	return statusErr(500, "Server Internal Error", err)
}

// confirmed is the call's life after both legs are up, until one side ends it.
func (c *Call) confirmed(ctx context.Context) {
	for {
		select {
		case ev := <-c.events:
			if c.handleConfirmed(ctx, ev) {
				return
			}
		case <-ctx.Done():
			c.endReason = "gateway stopped"
			c.byeBoth(ctx)
			return
		}
	}
}

// handleConfirmed handles one event of a confirmed call and reports whether
// the call ended.
func (c *Call) handleConfirmed(ctx context.Context, ev event) bool {
	switch ev.kind {
	case evWebRequest:
		req := ev.req
		switch req.Method {
		case sip.ACK:
			return false
		case sip.BYE:
			c.replyWeb(req, 200, "OK", nil)
			c.endReason = "web hung up"
			c.byeCore(ctx)
			return true
		case sip.INFO, sip.MESSAGE, sip.NOTIFY:
			c.relayToCore(ctx, req)
			return false
		default:
			// re-INVITE/UPDATE: session changes are not relayed yet; the
			// browser keeps its current session (RFC 3261 14.2).
			c.replyWeb(req, 488, "Not Acceptable Here", nil)
			return false
		}
	case evCoreRequest:
		req := ev.req
		defer func() {
			if ev.handled != nil {
				close(ev.handled)
			}
		}()
		switch req.Method {
		case sip.ACK:
			return false
		case sip.BYE:
			_ = ev.tx.Respond(response(req, 200, "OK", c.core.dlg.localTag))
			c.endReason = "core hung up"
			c.byeWeb(ctx)
			return true
		case sip.INFO:
			c.relayToWeb(ctx, req, ev.tx)
			return false
		default:
			_ = ev.tx.Respond(response(req, 488, "Not Acceptable Here", c.core.dlg.localTag))
			return false
		}
	case evFlowClosed:
		c.endReason = "websocket closed"
		c.byeCore(ctx)
		return true
	case evShutdown:
		c.endReason = "gateway stopped"
		c.byeBoth(ctx)
		return true
	case evCoreCancel:
		return false // too late: the call is answered
	}
	return false
}

func (c *Call) byeBoth(ctx context.Context) {
	c.byeWeb(ctx)
	c.byeCore(ctx)
}

// byeCore ends the core leg and waits (bounded) for its answer.
func (c *Call) byeCore(ctx context.Context) {
	req := c.core.dlg.request(sip.BYE, 0)
	c.g.core.prepareInDialog(req)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	res, err := c.g.core.do(ctx, req)
	if err != nil {
		c.log.Warn("bye to core", zap.Error(err))
		return
	}
	c.log.Debug("bye to core answered", zap.Int("status", res.StatusCode))
}

// byeWeb ends the web leg and waits (bounded) for the browser's answer.
func (c *Call) byeWeb(ctx context.Context) {
	req := c.web.dlg.request(sip.BYE, 0)
	req.PrependHeader(webVia(c.web.flow))
	tx, err := c.g.sendWeb(c.web.flow, req)
	if err != nil {
		return
	}
	defer c.g.endWebTx(tx)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case res := <-tx.responses:
			if res.StatusCode >= 200 {
				return
			}
		case <-tx.failed:
			return
		case <-t.C:
			c.log.Warn("browser did not answer bye")
			return
		case <-ctx.Done():
			return
		}
	}
}

// relayToCore passes an in-dialog request (INFO for DTMF, MESSAGE) from the
// browser to the core and its final response back, without holding the call.
func (c *Call) relayToCore(ctx context.Context, web *sip.Request) {
	req := c.core.dlg.request(web.Method, 0)
	copyHeaders(web, req, "Content-Type", "Info-Package", "Event")
	req.SetBody(web.Body())
	c.g.core.prepareInDialog(req)
	flow, tag, log := c.web.flow, c.web.dlg.localTag, c.log
	c.g.goOwned(func(gctx context.Context) {
		ctx, cancel := context.WithTimeout(gctx, 10*time.Second)
		defer cancel()
		res, err := c.g.core.do(ctx, req)
		out := response(web, 408, "Request Timeout", tag)
		if err == nil {
			out = response(web, res.StatusCode, res.Reason, tag)
		} else {
			se := statusOf(err)
			out = response(web, se.Code, se.Reason, tag)
		}
		c.g.replyWeb(flow, out, log)
	})
}

// relayToWeb passes an in-dialog request from the core to the browser.
func (c *Call) relayToWeb(ctx context.Context, core *sip.Request, tx sip.ServerTransaction) {
	req := c.web.dlg.request(core.Method, 0)
	req.PrependHeader(webVia(c.web.flow))
	copyHeaders(core, req, "Content-Type", "Info-Package", "Event")
	req.SetBody(core.Body())
	wtx, err := c.g.sendWeb(c.web.flow, req)
	if err != nil {
		_ = tx.Respond(response(core, 480, "Temporarily Unavailable", c.core.dlg.localTag))
		return
	}
	defer c.g.endWebTx(wtx)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case res := <-wtx.responses:
			if res.StatusCode >= 200 {
				_ = tx.Respond(response(core, res.StatusCode, res.Reason, c.core.dlg.localTag))
				return
			}
		case <-wtx.failed:
			_ = tx.Respond(response(core, 480, "Temporarily Unavailable", c.core.dlg.localTag))
			return
		case <-t.C:
			_ = tx.Respond(response(core, 408, "Request Timeout", c.core.dlg.localTag))
			return
		case <-ctx.Done():
			return
		}
	}
}
