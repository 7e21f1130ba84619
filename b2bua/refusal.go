package b2bua

import (
	"sync"
	"time"
)

// refusal is why a browser's request was refused before anything was
// relayed or allocated for it.
type refusal int

const (
	refusalNone         refusal = iota
	refusalUnregistered         // no registration on the flow
	refusalFrom                 // From is no AoR registered on the flow
	refusalPreferred            // nor is a P-Preferred-Identity
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
	}
	return "Forbidden"
}

// refusalLogWindow is how long a flow's later refusals of one reason go to
// Debug after one at Info.
const refusalLogWindow = 60 * time.Second

// refusalLog counts refusals by reason and remembers when each flow's were
// last logged at Info, so a browser that keeps trying cannot flood the log.
// Its size is bounded by the live flows (forget) and the window (sweep).
type refusalLog struct {
	counts tally
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
	l.counts.add(why.String())
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
	for why := refusalUnregistered; why <= refusalPreferred; why++ {
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
func (g *Gateway) Refusals() map[string]uint64 { return g.refused.counts.snapshot() }
