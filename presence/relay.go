// Package presence relays what is not part of a call between the browsers
// and the core: MESSAGE (RFC 3428), SUBSCRIBE/NOTIFY (RFC 6665) and
// PUBLISH (RFC 3903), and answers OPTIONS. It knows nothing of media or of
// the B2BUA: it declares the few things it needs of the gateway.
package presence

import (
	"context"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Flows sends toward a browser's WebSocket flow.
type Flows interface {
	Send(flow string, msg sip.Message) error
}

// Core sends a request toward the core and returns its final response.
type Core interface {
	Request(ctx context.Context, req *sip.Request) (*sip.Response, error)
}

// Bindings finds the flows on which an AoR is registered.
type Bindings interface {
	FlowsOf(aor sip.Uri) []string
}

// Relay takes the requests that are not part of a call. Its methods must
// not block: a request that needs the other side is answered later,
// through reply, exactly once with a final response.
type Relay struct {
	flows    Flows
	core     Core
	bindings Bindings
	log      *zap.Logger
}

// New makes a relay over what the gateway provides.
func New(flows Flows, core Core, bindings Bindings, log *zap.Logger) *Relay {
	return &Relay{flows: flows, core: core, bindings: bindings, log: log}
}

// FromWeb takes a browser's request outside a dialog.
func (r *Relay) FromWeb(flow string, req *sip.Request, reply func(*sip.Response)) {
	reply(r.local(req))
}

// FromCore takes the core's request outside a dialog.
func (r *Relay) FromCore(req *sip.Request, reply func(*sip.Response)) {
	reply(r.local(req))
}

// local answers what the relay handles itself: OPTIONS (a keepalive or
// capability query) with 200 and Allow; the rest is not relayed yet.
func (r *Relay) local(req *sip.Request) *sip.Response {
	if req.Method == sip.OPTIONS {
		return Capabilities(response(req, 200, "OK"))
	}
	return response(req, 501, "Not Implemented")
}

// response answers a request outside a dialog, with a To tag of ours
// (RFC 3261 8.2.6.2).
func response(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", sip.GenerateTagN(10))
	}
	return res
}

// What the gateway accepts, in and out of dialogs: methods, bodies and
// extensions (RFC 3261 11.2).
const (
	Allow     = "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS, PRACK, UPDATE, REFER, MESSAGE, NOTIFY"
	Accept    = "application/sdp"
	Supported = "100rel, timer, replaces"
)

// Capabilities puts Allow, Accept and Supported on an answer to OPTIONS.
func Capabilities(res *sip.Response) *sip.Response {
	res.AppendHeader(sip.NewHeader("Allow", Allow))
	res.AppendHeader(sip.NewHeader("Accept", Accept))
	res.AppendHeader(sip.NewHeader("Supported", Supported))
	return res
}
