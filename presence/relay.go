// Package presence relays what is not part of a call between the browsers
// and the core: MESSAGE (RFC 3428), SUBSCRIBE/NOTIFY (RFC 6665) and
// PUBLISH (RFC 3903), and answers OPTIONS. It knows nothing of media or of
// the B2BUA: it declares the few things it needs of the gateway.
package presence

import (
	"context"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/imsgate/imsgate/internal/tally"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Flows sends toward browsers' WebSocket flows.
type Flows interface {
	// Request sends a request to a browser over its flow and returns the
	// browser's final response.
	Request(ctx context.Context, flow string, req *sip.Request) (*sip.Response, error)
}

// Core sends toward the core.
type Core interface {
	// Request sends a request and returns the core's final response: out of
	// a dialog (no To tag) to the outbound proxy, in a dialog along its
	// Route headers to its Request-URI.
	Request(ctx context.Context, req *sip.Request) (*sip.Response, error)
	// Contact is the gateway's Contact toward the core with this user part;
	// the core's requests to it come back to the relay.
	Contact(user string) sip.Uri
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
	subs     subscriptions
	timing   timing
	counts   tally.Counts // MESSAGEs by direction and outcome (Stats)
	// newTag makes our tags, Call-IDs and Contact users (fixed in tests).
	newTag func(n int) string

	// base ends what is in flight when the relay closes.
	base   context.Context
	cancel context.CancelFunc
	life   sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
}

// timing is how long one second of Expires lasts (shorter in tests), and
// how long a subscription that was asked to end waits for its final NOTIFY.
type timing struct {
	unit  time.Duration
	grace time.Duration // 0: 64·T1
}

// New makes a relay over what the gateway provides.
func New(flows Flows, core Core, bindings Bindings, limits Limits, log *zap.Logger) *Relay {
	if limits.InFlight <= 0 {
		limits.InFlight = DefaultLimits.InFlight
	}
	if limits.MaxSubscriptions <= 0 {
		limits.MaxSubscriptions = DefaultLimits.MaxSubscriptions
	}
	base, cancel := context.WithCancel(context.Background())
	return &Relay{flows: flows, core: core, bindings: bindings, log: log,
		lim:      limiters{byFlow: map[string]*rate.Limiter{}, limits: limits},
		inFlight: make(chan struct{}, limits.InFlight),
		subs:     newSubscriptions(),
		timing:   timing{unit: time.Second},
		newTag:   sip.GenerateTagN,
		base:     base, cancel: cancel}
}

// FromWeb takes a browser's request that is not part of a call: outside
// any dialog, or in a subscription's.
func (r *Relay) FromWeb(flow string, req *sip.Request, reply func(*sip.Response)) {
	if res := malformed(req); res != nil {
		reply(res)
		return
	}
	if req.Method != sip.OPTIONS {
		if res := r.refuse(req, flow); res != nil {
			reply(res)
			return
		}
	}
	web := webSide{flows: r.flows, id: flow}
	switch {
	case hasToTag(req):
		r.inDialog(web, req, reply)
	case req.Method == sip.MESSAGE:
		r.messageFromWeb(req, reply)
	case req.Method == sip.SUBSCRIBE:
		r.subscribe(web, req, coreSide{r.core}, req.Recipient, reply)
	case req.Method == sip.PUBLISH:
		r.publish(flow, req, reply)
	default:
		reply(r.local(req))
	}
}

// FromCore takes the core's request that is not part of a call.
func (r *Relay) FromCore(req *sip.Request, reply func(*sip.Response)) {
	if res := malformed(req); res != nil {
		reply(res)
		return
	}
	switch {
	case hasToTag(req):
		r.inDialog(coreSide{r.core}, req, reply)
	case req.Method == sip.MESSAGE:
		r.toDevices(req, reply, messageHeaders, true)
	case req.Method == sip.SUBSCRIBE:
		r.subscribeFromCore(req, reply)
	case req.Method == sip.NOTIFY:
		r.unsolicited(req, reply)
	default:
		reply(r.local(req))
	}
}

// local answers what the relay handles itself: OPTIONS (a keepalive or
// capability query) with 200 and Allow; a NOTIFY outside a subscription
// with 481 (RFC 6665 4.1.3); the rest with 405 or 501.
func (r *Relay) local(req *sip.Request) *sip.Response {
	switch req.Method {
	case sip.OPTIONS:
		return Capabilities(response(req, 200, "OK"))
	case sip.NOTIFY:
		return response(req, 481, "Subscription Does Not Exist")
	case sip.PUBLISH: // toward the core's compositor only
		res := response(req, 405, "Method Not Allowed")
		res.AppendHeader(sip.NewHeader("Allow", Allow))
		return res
	}
	return response(req, 501, "Not Implemented")
}

// malformed answers a request lacking what every request has (RFC 3261
// 8.1.1) with 400; the gateway checks this too, the relay does not rely on it.
func malformed(req *sip.Request) *sip.Response {
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return response(req, 400, "Bad Request")
	}
	return nil
}

// hasToTag: the request is in a dialog (RFC 3261 12.2).
func hasToTag(req *sip.Request) bool { return tagOf(req.To().Params) != "" }

// response answers a request outside a dialog, with a To tag of ours
// (RFC 3261 8.2.6.2).
func response(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", sip.GenerateTagN(10))
	}
	return res
}

// spawn runs f on a goroutine of the relay's, bounded by InFlight; false
// when that is full or the relay closed.
func (r *Relay) spawn(f func()) bool {
	select {
	case r.inFlight <- struct{}{}:
	default:
		return false
	}
	r.life.Lock()
	if r.closed {
		r.life.Unlock()
		<-r.inFlight
		return false
	}
	r.wg.Add(1)
	r.life.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() { <-r.inFlight }()
		f()
	}()
	return true
}

// txContext bounds one request to the far side: 64·T1, a non-INVITE
// transaction's lifetime (RFC 3261 17.1.2.2).
func (r *Relay) txContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.base, messageTimeout())
}

// busy is the answer when no more requests may be in flight.
func busy(req *sip.Request) *sip.Response {
	res := response(req, 503, "Service Unavailable")
	res.AppendHeader(sip.NewHeader("Retry-After", "1"))
	return res
}

// Close ends what is in flight and drops every subscription, without
// telling the far sides (their subscriptions expire), and waits for the
// relay's goroutines.
// Stats is what the relay has done: MESSAGEs by "direction outcome"
// ("web_to_core 2xx", "core_to_web no_answer") and the subscriptions that
// exist now.
func (r *Relay) Stats() (messages map[string]uint64, subscriptions int) {
	r.subs.mu.Lock()
	for _, set := range r.subs.byFlow {
		subscriptions += len(set)
	}
	r.subs.mu.Unlock()
	return r.counts.Snapshot(), subscriptions
}

func (r *Relay) Close() {
	r.life.Lock()
	r.closed = true
	r.life.Unlock()
	r.cancel()
	r.subs.dropAll()
	r.wg.Wait()
}

// What the gateway accepts, in and out of dialogs: methods, bodies,
// extensions (RFC 3261 11.2) and event packages (RFC 6665 8.2.2).
const (
	Allow       = "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS, PRACK, UPDATE, REFER, MESSAGE, NOTIFY, SUBSCRIBE, PUBLISH"
	Accept      = "application/sdp"
	Supported   = "100rel, timer, replaces"
	AllowEvents = "presence, dialog, message-summary, reg"
)

// Capabilities puts Allow, Accept, Supported and Allow-Events on an answer
// to OPTIONS.
func Capabilities(res *sip.Response) *sip.Response {
	res.AppendHeader(sip.NewHeader("Allow", Allow))
	res.AppendHeader(sip.NewHeader("Accept", Accept))
	res.AppendHeader(sip.NewHeader("Supported", Supported))
	res.AppendHeader(sip.NewHeader("Allow-Events", AllowEvents))
	return res
}
