// Package serial hands queued work, in order, to a goroutine that exists
// only while work waits: a connection or a call at rest keeps no goroutine
// for it.
package serial

import "sync"

// Queue runs fn on each pushed item in order. Its fields are guarded by the
// owner's mutex, given to Init, so the owner can queue under the lock it
// already holds.
type Queue[T any] struct {
	mu      *sync.Mutex
	items   []T
	running bool
	idle    sync.Cond // broadcast when items are taken and when the worker ends
	// fn handles one item; false stops the worker and drops what is queued.
	fn func(T) bool
	// start runs the worker on a goroutine; false (its owner has stopped)
	// drops what is queued.
	start func(func()) bool
}

// Init sets the owner's mutex, the handler, and how the worker goroutine
// is started (nil: a plain go statement).
func (q *Queue[T]) Init(mu *sync.Mutex, fn func(T) bool, start func(func()) bool) {
	if start == nil {
		start = func(f func()) bool { go f(); return true }
	}
	q.mu, q.fn, q.start = mu, fn, start
	q.idle.L = mu
}

// Push adds an item and starts the worker if none runs. mu must be held.
func (q *Queue[T]) Push(item T) {
	q.items = append(q.items, item)
	if q.running {
		return
	}
	q.running = true
	if !q.start(q.work) {
		q.running = false
		q.items = nil
	}
}

// WaitIdle waits until the worker has ended. mu must be held.
func (q *Queue[T]) WaitIdle() {
	for q.running {
		q.idle.Wait()
	}
}

func (q *Queue[T]) work() {
	for {
		q.mu.Lock()
		batch := q.items
		q.items = nil
		if len(batch) == 0 {
			q.running = false
		}
		q.idle.Broadcast()
		q.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, item := range batch {
			if !q.fn(item) {
				q.mu.Lock()
				q.items = nil
				q.running = false
				q.idle.Broadcast()
				q.mu.Unlock()
				return
			}
		}
	}
}

// Len is the number of items waiting. mu must be held.
func (q *Queue[T]) Len() int { return len(q.items) }

// WaitBelow waits until fewer than n items wait. mu must be held.
func (q *Queue[T]) WaitBelow(n int) {
	for len(q.items) >= n {
		q.idle.Wait()
	}
}

// Drop forgets the items waiting. mu must be held.
func (q *Queue[T]) Drop() { q.items = nil }
