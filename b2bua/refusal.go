package b2bua

import (
	"sync"
	"time"

	"github.com/imsgate/imsgate/internal/tally"
)

// refusal is why a browser's request was refused before anything was
// relayed or allocated for it.
type refusal int

const (
	refusalNone          refusal = iota
	refusalUnregistered          // no registration on the flow
	refusalFrom                  // From is no AoR registered on the flow
	refusalPreferred             // nor is a P-Preferred-Identity
	refusalDenied                // a destination of limits.deny_destinations
	refusalTokenExpired          // the token session ran out
	refusalTokenIdentity         // not the token's identity
	refusalScope                 // not in the token's scope
	refusalDestination           // a destination the token does not allow
	refusalRegistrations         // limits.registrations_per_conn reached
	refusalIdentityCalls         // limits.calls_per_identity reached
	refusalLast          = refusalIdentityCalls
)

func (r refusal) String() string {
	switch r {
	case refusalNone:
		return "none"
	case refusalUnregistered:
		return "unregistered"
	case refusalFrom:
		return "from_not_registered"
	case refusalPreferred:
		return "preferred_identity_not_registered"
	case refusalDenied:
		return "destination_denied"
	case refusalTokenExpired:
		return "token_expired"
	case refusalTokenIdentity:
		return "not_token_identity"
	case refusalScope:
		return "token_scope"
	case refusalDestination:
		return "token_destination"
	case refusalRegistrations:
		return "registrations_per_conn"
	case refusalIdentityCalls:
		return "calls_per_identity"
	}
	return "unknown"
}

// phrase is the 403's reason phrase and Warning text: the browser's user
// (or its developer) sees what to fix.
func (r refusal) phrase() string {
	switch r {
	case refusalUnregistered:
		return "Not registered on this connection"
	case refusalFrom:
		return "From is not registered on this connection"
	case refusalPreferred:
		return "P-Preferred-Identity is not registered on this connection"
	case refusalDenied:
		return "Destination not allowed"
	case refusalTokenExpired:
		return "Token expired"
	case refusalTokenIdentity:
		return "Not the identity of this connection's token"
	case refusalScope:
		return "Not allowed by this connection's token"
	case refusalDestination:
		return "Destination not allowed by this connection's token"
	case refusalRegistrations:
		return "Too many registrations on this connection"
	case refusalIdentityCalls:
		return "Too many calls for this identity"
	}
	return "Forbidden"
}

// status is the refusal's SIP status: 403 for what the browser may not
// do, 486 for a limit it may reach again once a call ends.
func (r refusal) status() int {
	if r == refusalIdentityCalls {
		return 486
	}
	return 403
}

// refusalLogWindow is how long a flow's later refusals of one reason go to
// Debug after one at Info.
const refusalLogWindow = 60 * time.Second

// refusalLog counts refusals by reason and remembers when each flow's were
// last logged at Info, so a browser that keeps trying cannot flood the log.
// Its size is bounded by the live flows (forget) and the window (sweep).
type refusalLog struct {
	counts tally.Counts
	mu     sync.Mutex
	logged map[refusalKey]time.Time
}

type refusalKey struct {
	flow string
	why  refusal
}

// note counts a refusal; true when it is the first of its flow and reason
// in the window, to be logged at Info.
func (l *refusalLog) note(flow string, why refusal, now time.Time) bool {
	l.counts.Add(why.String())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logged == nil {
		l.logged = map[refusalKey]time.Time{}
	}
	k := refusalKey{flow, why}
	if last, ok := l.logged[k]; ok && now.Sub(last) < refusalLogWindow {
		return false
	}
	l.logged[k] = now
	return true
}

// forget drops a closed flow's entries.
func (l *refusalLog) forget(flow string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for why := refusalUnregistered; why <= refusalLast; why++ {
		delete(l.logged, refusalKey{flow, why})
	}
}

// sweep drops entries past the window.
func (l *refusalLog) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, at := range l.logged {
		if now.Sub(at) >= refusalLogWindow {
			delete(l.logged, k)
		}
	}
}

// Refusals is how many browser requests were refused before anything was
// relayed, by reason ("unregistered", "from_not_registered",
// "preferred_identity_not_registered").
func (g *Gateway) Refusals() map[string]uint64 { return g.refused.counts.Snapshot() }
