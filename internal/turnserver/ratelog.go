package turnserver

import (
	"net/netip"
	"sync"
	"time"
)

// warnKind is what a rate-limited warning is about.
type warnKind uint8

const (
	warnUnknown warnKind = iota
	warnPeer             // a peer refused by policy or permits
	warnAuth             // credentials refused
	warnQuota            // an Allocate past a quota
	warnConn             // a connection refused at accept
)

// warnKey is one line's worth of refusals: a client address (without its
// port, which a client changes at will) and, for peers, the peer's range.
type warnKey struct {
	kind   warnKind
	client netip.Addr
	peer   netip.Prefix
}

// warnLimiter lets a warning through once per key per interval. It holds
// at most max keys: past that it forgets the expired ones (at most once a
// second, so a flood of new keys costs no scan per refusal) and, when
// every key is fresh, keeps quiet. A flood costs log lines, not memory.
type warnLimiter struct {
	every time.Duration
	max   int

	mu        sync.Mutex
	seen      map[warnKey]time.Time
	lastSweep time.Time
}

func newWarnLimiter(every time.Duration, max int) *warnLimiter {
	return &warnLimiter{every: every, max: max, seen: make(map[warnKey]time.Time)}
}

func (l *warnLimiter) allow(k warnKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.seen[k]; ok {
		if now.Sub(t) < l.every {
			return false
		}
		l.seen[k] = now
		return true
	}
	if len(l.seen) >= l.max {
		if now.Sub(l.lastSweep) < time.Second {
			return false
		}
		l.lastSweep = now
		for key, t := range l.seen {
			if now.Sub(t) >= l.every {
				delete(l.seen, key)
			}
		}
		if len(l.seen) >= l.max {
			return false
		}
	}
	l.seen[k] = now
	return true
}

func (l *warnLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}
