package presence

import (
	"sync"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"
)

// Limits bound what one browser connection may make the relay do.
type Limits struct {
	MaxBodyBytes int
	// MessageRate and MessageBurst bound the requests a connection may
	// send the relay (MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH).
	MessageRate  float64 // per second, per connection
	MessageBurst int
	// MaxSubscriptions bounds the subscriptions one connection is part
	// of, either way.
	MaxSubscriptions int
	// InFlight bounds the requests the relay waits on at once, all
	// connections together.
	InFlight int
}

// DefaultLimits are used when New is given none.
var DefaultLimits = Limits{MaxBodyBytes: 64 << 10, MessageRate: 5, MessageBurst: 20, MaxSubscriptions: 32, InFlight: 1024}

// limiters keeps one rate limiter per connection; a closed connection's
// is dropped with Forget.
type limiters struct {
	mu     sync.Mutex
	byFlow map[string]*rate.Limiter
	limits Limits
}

func (l *limiters) allow(flow string) bool {
	l.mu.Lock()
	lim := l.byFlow[flow]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(l.limits.MessageRate), l.limits.MessageBurst)
		l.byFlow[flow] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

func (l *limiters) forget(flow string) {
	l.mu.Lock()
	delete(l.byFlow, flow)
	l.mu.Unlock()
}

// refuse answers what a browser may not send: too large, too often.
func (r *Relay) refuse(req *sip.Request, flow string) *sip.Response {
	switch {
	case len(req.Body()) > r.lim.limits.MaxBodyBytes:
		return response(req, 413, "Request Entity Too Large")
	case !r.lim.allow(flow):
		return tooMany(req)
	}
	return nil
}

func tooMany(req *sip.Request) *sip.Response {
	res := response(req, 429, "Too Many Requests")
	res.AppendHeader(sip.NewHeader("Retry-After", "1"))
	return res
}

// Forget drops what the relay keeps for a closed connection, and ends its
// subscriptions at the core: a browser's own with SUBSCRIBE Expires: 0,
// the core's toward it with a final NOTIFY (RFC 6665 4.2.2).
func (r *Relay) Forget(flow string) {
	r.lim.forget(flow)
	for _, s := range r.subs.takeFlow(flow) {
		r.logEnd(s, "flow closed")
		if s.sub.side.flow() == flow {
			r.endAtNotifier(s)
		} else {
			r.endAtSubscriber(s, "deactivated")
		}
	}
}
