package sipws

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// refusalKind is why the intake refused a connection, an upgrade or a
// message; its String is the key of Server.Refusals.
type refusalKind int

const (
	refusalUnknown         refusalKind = iota
	refusalConnsPerIP                  // a TCP connection past limits.conns_per_ip: closed at once
	refusalUpgradeRate                 // an upgrade past limits.upgrades_per_ip: 429
	refusalUpgradeTimeout              // a request not in within limits.upgrade_timeout: closed
	refusalUpgradeTooLarge             // upgrade headers over limits.max_upgrade_bytes: 431
	refusalAdmission                   // the Admission refused the upgrade
	refusalRequestRate                 // a request past limits.requests_per_conn: 503, an ACK dropped
	refusalRateClose                   // a connection that kept on past the rate: closed with 1008
	refusalTooManyHeaders              // more than limits.max_headers header fields: 400
	refusalSDPTooLarge                 // an SDP body over limits.max_sdp_bytes: 413
	refusalMalformed                   // a message the parser or the intake checks refuse
	refusalKinds                       // how many there are
)

func (k refusalKind) String() string {
	switch k {
	case refusalConnsPerIP:
		return "conns_per_ip"
	case refusalUpgradeRate:
		return "upgrade_rate"
	case refusalUpgradeTimeout:
		return "upgrade_timeout"
	case refusalUpgradeTooLarge:
		return "upgrade_too_large"
	case refusalAdmission:
		return "admission"
	case refusalRequestRate:
		return "request_rate"
	case refusalRateClose:
		return "request_rate_close"
	case refusalTooManyHeaders:
		return "too_many_headers"
	case refusalSDPTooLarge:
		return "sdp_too_large"
	case refusalMalformed:
		return "malformed"
	default:
		return "unknown"
	}
}

// refusalLogSources bounds the (source, kind) pairs whose last Warn is
// remembered: past it, refusals of new pairs go to Debug until the window
// frees room, so a flood of addresses can neither grow the map nor the log.
const refusalLogSources = 4096

// refusalSweepEvery bounds how often a full table is swept.
const refusalSweepEvery = time.Second

// refusalLog counts refusals by kind and remembers when each source's were
// last logged at Warn, so that one source logs one line per kind and window.
type refusalLog struct {
	counts [refusalKinds]atomic.Uint64
	window time.Duration

	mu        sync.Mutex
	logged    map[refusalKey]time.Time
	lastSweep time.Time
}

// refusalKey is a source, by IP address, and a kind. Flows are not keys: a
// client opening many connections would otherwise log once per connection.
type refusalKey struct {
	ip   netip.Addr
	kind refusalKind
}

func newRefusalLog(window time.Duration) *refusalLog {
	return &refusalLog{window: window, logged: map[refusalKey]time.Time{}}
}

// note counts a refusal and reports whether it is the first of its source
// and kind in the window, to be logged at Warn.
func (l *refusalLog) note(kind refusalKind, ip netip.Addr, now time.Time) bool {
	l.counts[kind].Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	k := refusalKey{ip: ip, kind: kind}
	last, seen := l.logged[k]
	if seen && now.Sub(last) < l.window {
		return false
	}
	if !seen && len(l.logged) >= refusalLogSources {
		l.sweep(now)
		if len(l.logged) >= refusalLogSources {
			return false
		}
	}
	l.logged[k] = now
	return true
}

// sweep drops the entries past the window, at most once a second: a
// flood of new sources finds the table full at every refusal.
func (l *refusalLog) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < refusalSweepEvery {
		return
	}
	l.lastSweep = now
	for k, at := range l.logged {
		if now.Sub(at) >= l.window {
			delete(l.logged, k)
		}
	}
}

// snapshot is the count of every kind, zero ones included.
func (l *refusalLog) snapshot() map[string]uint64 {
	out := make(map[string]uint64, refusalKinds-1)
	for k := refusalUnknown + 1; k < refusalKinds; k++ {
		out[k.String()] = l.counts[k].Load()
	}
	return out
}

// Refusals is how many connections, upgrades and messages the intake has
// refused, by kind: conns_per_ip, upgrade_rate, upgrade_timeout, admission,
// request_rate, request_rate_close, too_many_headers, sdp_too_large and
// malformed.
func (s *Server) Refusals() map[string]uint64 { return s.refusals.snapshot() }

// Upgrades is how many WebSocket upgrades were accepted since the start;
// the refused ones are counted in Refusals.
func (s *Server) Upgrades() uint64 { return s.upgraded.Load() }

// refuse counts a refusal and logs it, at Warn the first time in the log
// window for its source and kind and at Debug after that.
func (s *Server) refuse(kind refusalKind, ip netip.Addr, msg string, fields ...zap.Field) {
	level := zap.DebugLevel
	if s.refusals.note(kind, ip, s.now()) {
		level = zap.WarnLevel
	}
	if ce := s.log.Check(level, msg); ce != nil {
		ce.Write(append(fields, zap.Stringer("reason", kind))...)
	}
}
