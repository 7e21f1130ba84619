package b2bua

import (
	"errors"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// callSlots bounds the calls in progress per identity
// (limits.calls_per_identity: one browser's identity cannot hold the
// core's capacity) and in the whole gateway (limits.calls_total). A slot is
// taken before a call's media is allocated and given back when the call
// leaves the tables; the map holds only identities with calls.
type callSlots struct {
	mu         sync.Mutex
	total      int
	byIdentity map[string]int
}

var errCallsTotal = errors.New("limits.calls_total reached")

// take reserves a slot for identity; refusalIdentityCalls or
// errCallsTotal when none is free.
func (s *callSlots) take(identity string, perIdentity, total int) (refusal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= total {
		return refusalNone, statusErr(503, "Service Unavailable", errCallsTotal)
	}
	if s.byIdentity == nil {
		s.byIdentity = map[string]int{}
	}
	if s.byIdentity[identity] >= perIdentity {
		return refusalIdentityCalls, nil
	}
	s.total++
	s.byIdentity[identity]++
	return refusalNone, nil
}

func (s *callSlots) give(identity string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if n := s.byIdentity[identity] - 1; n > 0 {
		s.byIdentity[identity] = n
	} else {
		delete(s.byIdentity, identity)
	}
}

// takeSlot reserves a slot for a call of identity before anything is
// allocated for it; the key goes to Call.holdSlot.
func (g *Gateway) takeSlot(identity sip.Uri) (string, refusal, error) {
	key := aorKey(identity) // as the registrar keys an AoR
	why, err := g.slots.take(key, g.cfg.Limits.CallsPerIdentity, g.cfg.Limits.CallsTotal)
	return key, why, err
}

// holdSlot makes the call the holder of a slot taken for it.
func (c *Call) holdSlot(key string) {
	c.slot = key
	c.slotHeld.Store(true)
}

// giveSlot returns the call's slot, once.
func (g *Gateway) giveSlot(c *Call) {
	if c.slotHeld.Swap(false) {
		g.slots.give(c.slot)
	}
}
