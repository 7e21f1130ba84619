// Package tally counts events by a small, fixed set of names (digit
// forms, refusal reasons, message outcomes) for the parts' accessors,
// which the metrics read at scrape time.
package tally

import "sync"

// Counts is a count per name; the zero value is ready.
type Counts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// Add counts one more of name.
func (c *Counts) Add(name string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]uint64{}
	}
	c.n[name]++
	c.mu.Unlock()
}

// Snapshot is a copy of the counts.
func (c *Counts) Snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}
