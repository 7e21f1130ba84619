package presence

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// A subscription is relayed as two dialogs of the gateway's: on the
// subscriber's leg we are the notifier, on the notifier's leg the
// subscriber (RFC 6665). The legs are the same code whichever side each is
// on: a browser subscribing to the core, or the core to a browser.
type subscription struct {
	id    string // our Contact user on both legs
	event event
	// eventValue is the subscriber's Event header, for our own requests.
	eventValue string
	flow       string // the browser's flow, whichever leg it is on
	sub        *leg   // the subscriber's: it refreshes, we NOTIFY it
	ntf        *leg   // the notifier's: we SUBSCRIBE, it NOTIFYs us
	// answered is closed once the subscriber has the answer to its first
	// SUBSCRIBE. A NOTIFY that overtook the notifier's 2xx (RFC 6665
	// 4.1.2.4 allows it; JsSIP drops it as for no subscription) waits for
	// it, so the subscriber sees the two in the order the notifier sent.
	answered chan struct{}

	// Guarded by subscriptions.mu.
	timer        *time.Timer // the subscriber's expiry
	gen          uint64      // which timer is current
	ended        bool
	created      bool   // a 2xx answered the subscriber
	unsubscribed bool   // Expires: 0 went or was granted: only a final NOTIFY may follow
	auth         []hdr  // the subscriber's last credentials, for our own unsubscribe
	expires      uint32 // last granted
}

// leg is one of a subscription's dialogs and the side it is on.
type leg struct {
	side side
	key  string
	dlg  dialog // guarded by subscriptions.mu
	// sending holds our requests on this leg to one at a time, so that
	// they reach the peer in CSeq order (RFC 3261 12.2.2).
	sending sync.Mutex
}

type hdr struct{ name, value string }

func newLeg(s side, d dialog) *leg { return &leg{side: s, dlg: d, key: s.key(d.callID, d.localTag)} }

// subscriptions is the one table of subscriptions, by each leg's key and by
// flow; its mutex guards every subscription's mutable state too.
type subscriptions struct {
	mu     sync.Mutex
	byKey  map[string]*subscription
	byFlow map[string]map[*subscription]struct{}
}

func newSubscriptions() subscriptions {
	return subscriptions{byKey: map[string]*subscription{}, byFlow: map[string]map[*subscription]struct{}{}}
}

// add publishes s under both legs' keys, unless its flow already holds max
// subscriptions.
func (t *subscriptions) add(s *subscription, max int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.byFlow[s.flow]
	if len(set) >= max {
		return false
	}
	if set == nil {
		set = map[*subscription]struct{}{}
		t.byFlow[s.flow] = set
	}
	set[s] = struct{}{}
	t.byKey[s.sub.key] = s
	t.byKey[s.ntf.key] = s
	return true
}

// lookup finds the subscription a leg's key names, and that leg.
func (t *subscriptions) lookup(key string) (*subscription, *leg) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byKey[key]
	switch {
	case s == nil:
		return nil, nil
	case s.sub.key == key:
		return s, s.sub
	}
	return s, s.ntf
}

// removeLocked drops s and its timer; false when it was already gone.
func (t *subscriptions) removeLocked(s *subscription) bool {
	if s.ended {
		return false
	}
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
	}
	delete(t.byKey, s.sub.key)
	delete(t.byKey, s.ntf.key)
	if set := t.byFlow[s.flow]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(t.byFlow, s.flow)
		}
	}
	return true
}

func (t *subscriptions) remove(s *subscription) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(s)
}

// takeFlow drops and returns every subscription of a flow.
func (t *subscriptions) takeFlow(flow string) []*subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*subscription
	for s := range t.byFlow[flow] {
		out = append(out, s)
	}
	for _, s := range out {
		t.removeLocked(s)
	}
	return out
}

func (t *subscriptions) dropAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.byKey {
		t.removeLocked(s)
	}
}

// expireIn (re)arms the subscriber's expiry, under subscriptions.mu. At 0
// the subscription is ending: it waits a transaction's time for the final
// NOTIFY (RFC 6665 4.2.1.4) and then goes without more ado.
func (r *Relay) expireIn(s *subscription, secs uint32) {
	if s.ended {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.gen++
	gen := s.gen
	s.expires = secs
	d := time.Duration(secs) * r.timing.unit
	s.unsubscribed = secs == 0
	if secs == 0 {
		d = r.timing.grace
		if d <= 0 {
			d = messageTimeout()
		}
	}
	s.timer = time.AfterFunc(d, func() { r.expired(s, gen) })
}

// expired ends a subscription its subscriber did not refresh in time: at
// the notifier too, unless that was already asked.
func (r *Relay) expired(s *subscription, gen uint64) {
	r.subs.mu.Lock()
	if s.gen != gen || !r.subs.removeLocked(s) {
		r.subs.mu.Unlock()
		return
	}
	r.subs.mu.Unlock()
	r.logEnd(s, "expired")
	r.endAtNotifier(s)
}

// end drops s after a final word on one of its legs (a terminated NOTIFY,
// a 481), logging why.
func (r *Relay) end(s *subscription, reason string) {
	if r.subs.remove(s) {
		r.logEnd(s, reason)
	}
}

func (r *Relay) logEnd(s *subscription, reason string) {
	r.subs.mu.Lock()
	created := s.created
	r.subs.mu.Unlock()
	if created {
		r.log.Info("subscription ended", r.fields(s, zap.String("reason", reason))...)
	} else {
		r.log.Debug("subscription ended", r.fields(s, zap.String("reason", reason))...)
	}
}

// fields name a subscription in logs: the subscriber's Call-ID (the one
// its sender knows), ours on the other leg, the event and the flow.
func (r *Relay) fields(s *subscription, more ...zap.Field) []zap.Field {
	return append([]zap.Field{zap.String("sip_call_id", s.sub.dlg.callID), zap.String("relayed_call_id", s.ntf.dlg.callID),
		zap.String("event", s.event.String()), zap.String("flow", s.flow), zap.String("leg", s.sub.side.String())}, more...)
}
