// Package presence relays what is not part of a call between the browsers
// and the core: MESSAGE (RFC 3428), SUBSCRIBE/NOTIFY (RFC 6665) and
// PUBLISH (RFC 3903), and answers OPTIONS. It knows nothing of media or of
// the B2BUA: it declares the few things it needs of the gateway.
package presence

import (
	"context"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Flows sends toward browsers' WebSocket flows.
type Flows interface {
	// Request sends a request to a browser over its flow and returns the
	// browser's final response.
	Request(ctx context.Context, flow string, req *sip.Request) (*sip.Response, error)
}

// Core sends a request toward the core and returns its final response.
type Core interface {
	Request(ctx context.Context, req *sip.Request) (*sip.Response, error)
}

// Bindings finds registered browsers.
type Bindings interface {
	// Device is the browser a Contact of the gateway's names by its user
	// part (what the core sends to when it means one device).
	Device(user string) (Device, bool)
	// Devices are the browsers registered for an AoR.
	Devices(aor sip.Uri) []Device
}

// Device is one registered browser: its flow and its own Contact.
type Device struct {
	Flow    string
	Contact sip.Uri
}

// Relay takes the requests that are not part of a call. Its methods must
// not block: a request that needs the other side is answered later,
// through reply, exactly once with a final response.
type Relay struct {
	flows    Flows
	core     Core
	bindings Bindings
	log      *zap.Logger
	lim      limiters
	inFlight chan struct{}
}

// New makes a relay over what the gateway provides.
func New(flows Flows, core Core, bindings Bindings, limits Limits, log *zap.Logger) *Relay {
	if limits.InFlight <= 0 {
		limits.InFlight = DefaultLimits.InFlight
	}
	return &Relay{flows: flows, core: core, bindings: bindings, log: log,
		lim:      limiters{byFlow: map[string]*rate.Limiter{}, limits: limits},
		inFlight: make(chan struct{}, limits.InFlight)}
}

// FromWeb takes a browser's request outside a dialog.
func (r *Relay) FromWeb(flow string, req *sip.Request, reply func(*sip.Response)) {
	if req.Method == sip.MESSAGE {
		r.messageFromWeb(flow, req, reply)
		return
	}
	reply(r.local(req))
}

// FromCore takes the core's request outside a dialog.
func (r *Relay) FromCore(req *sip.Request, reply func(*sip.Response)) {
	if req.Method == sip.MESSAGE {
		r.messageFromCore(req, reply)
		return
	}
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
