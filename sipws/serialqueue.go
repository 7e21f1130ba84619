package sipws

import "sync"

// serialQueue hands queued items, in order, to fn on a goroutine that exists
// only while items wait: a connection at rest keeps no goroutine for it. The
// connection's writer and its frame handler are both one.
type serialQueue struct {
	mu      *sync.Mutex // the connection's; guards every field
	items   [][]byte
	running bool
	idle    sync.Cond // broadcast when items are taken and when the worker ends
	// fn handles one item; false stops the worker and drops what is queued.
	fn func([]byte) bool
}

func (q *serialQueue) init(mu *sync.Mutex, fn func([]byte) bool) {
	q.mu, q.fn = mu, fn
	q.idle.L = mu
}

// push adds an item and starts the worker if none runs. mu must be held.
func (q *serialQueue) push(item []byte) {
	q.items = append(q.items, item)
	if !q.running {
		q.running = true
		go q.work()
	}
}

// waitIdle waits until the worker has ended. mu must be held.
func (q *serialQueue) waitIdle() {
	for q.running {
		q.idle.Wait()
	}
}

func (q *serialQueue) work() {
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
