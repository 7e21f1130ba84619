package b2bua

import "sync"

// tally counts events by a small, fixed set of names (digit forms,
// refusal reasons) for the gateway's accessors; metrics read them later.
type tally struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (t *tally) add(name string) {
	t.mu.Lock()
	if t.n == nil {
		t.n = map[string]uint64{}
	}
	t.n[name]++
	t.mu.Unlock()
}

// snapshot is a copy of the counts.
func (t *tally) snapshot() map[string]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]uint64, len(t.n))
	for k, v := range t.n {
		out[k] = v
	}
	return out
}
