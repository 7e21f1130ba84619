package b2bua

import (
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// A call outlives its browser's WebSocket for calls.reconnect_grace: the
// call, not the connection, owns the dialogs, and media is UDP. The
// dropped flow is parked: its bindings stay registered at the core (an IMS
// core releases a user's sessions on de-registration) and its answered
// calls wait. A browser that reconnects and registers the same Contact (or
// the same RFC 5626 +sip.instance) takes the binding and the calls over;
// past the grace the calls end with BYE and the bindings are removed at
// the core.

// consentPeriod is how long a browser has to be heard again (RFC 7675).
const consentPeriod = 30 * time.Second

// onFlowClosed: an answered call waits for its browser; any other ends.
func (c *Call) onFlowClosed() {
	grace := c.g.cfg.Calls.ReconnectGrace
	if c.state != StateConfirmed || grace <= 0 || c.ending {
		c.end(Cause{Reason: EndFlowClosed, By: SideWeb})
		return
	}
	c.detached = true
	c.arm(timerKey{timerReconnect, SideWeb}, grace)
	c.log.Info("browser's WebSocket dropped; call kept for its reconnection", zap.Duration("grace", grace))
	c.note("ws", "the browser's WebSocket dropped; the call waits %s for it to come back", grace)
	// What was on its way to the browser will get no answer.
	for tx := range c.web.out {
		c.onTxFailed(tx, errFlowGone, false)
	}
}

// onFlowMoved: the browser is back on a new connection.
func (c *Call) onFlowMoved(f webFlow) {
	if !c.detached {
		// The old connection was open but the browser has left it: what
		// was sent over it will get no answer.
		for tx := range c.web.out {
			c.onTxFailed(tx, errFlowGone, false)
		}
	}
	c.web.tr = &webTransport{g: c.g, flow: f}
	c.detached = false
	c.disarm(timerKey{timerReconnect, SideWeb})
	if c.ids.Load() != nil {
		c.publishIDs() // a Replaces naming the call finds the browser where it is now
	}
	if c.consentLost {
		// Its media went silent while it was away: it has one consent
		// period (RFC 7675, 30 s) to be heard again, an ICE restart say.
		c.consentLost = false
		c.arm(timerKey{timerConsent, SideWeb}, c.g.consentPeriod)
	}
	c.log.Info("browser reconnected; call moved to its new connection", zap.String("new_flow", f.Flow()))
	c.note("ws", "the browser is back on a new WebSocket (flow %s)", f.Flow())
}

// instanceOf is a Contact's +sip.instance (RFC 5626 §4.1), unquoted.
func instanceOf(ct *sip.ContactHeader) string {
	v, _ := ct.Params.Get("+sip.instance")
	return strings.Trim(v, `"<>`)
}

// regIDOf is a Contact's reg-id (RFC 5626 §4.2), "" without one.
func regIDOf(ct *sip.ContactHeader) string {
	v, _ := ct.Params.Get("reg-id")
	return v
}

// takeOver moves a claimed binding, whose REGISTER from a new flow the
// core has just accepted, with the calls of its old flow, to the new flow.
// An old flow still open is closed: the device has left it. It runs on the
// new flow's register worker.
func (g *Gateway) takeOver(f webFlow, b *binding) {
	old, ok := g.reg.move(b, f.Flow())
	if !ok {
		return // released meanwhile: the grace ran out
	}
	g.mu.Lock()
	_, wasParked := g.parked[old]
	calls := make([]*Call, 0, len(g.flowCalls[old]))
	for c := range g.flowCalls[old] {
		calls = append(calls, c)
	}
	delete(g.flowCalls, old)
	delete(g.parked, old)
	for _, c := range calls {
		delete(g.calls, webKey(old, c.web.dlg.callID))
		c.flow = f.Flow()
		g.calls[webKey(c.flow, c.web.dlg.callID)] = c
		addCallTo(g.flowCalls, c.flow, c)
	}
	g.mu.Unlock()
	// Other bindings of the old connection were not claimed.
	for _, rest := range g.reg.takeFlow(old) {
		g.unreg.add(rest)
	}
	for _, c := range calls {
		c.enqueue(event{kind: evFlowMoved, flow: f})
	}
	g.log.Info("reconnected browser took over its binding", zap.String("aor", b.aor.String()), zap.String("old_flow", old),
		zap.String("flow", f.Flow()), zap.Int("calls", len(calls)), zap.Bool("old_open", !wasParked))
	if !wasParked {
		if of, ok := g.lookupFlow(old); ok {
			if cl, ok := of.(interface{ Close(code int, reason string) }); ok {
				cl.Close(websocket.CloseNormalClosure, replacedClose)
			}
		}
	}
}

// replacedClose is the WebSocket close of a connection whose device
// registered again over a new one.
const replacedClose = "replaced by a new connection"

func (g *Gateway) isParked(flow string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.parked[flow]
	return ok
}
