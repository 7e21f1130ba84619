package serial

import (
	"sync"
	"testing"
)

func TestQueueOrderAndRest(t *testing.T) {
	var mu sync.Mutex
	var got []int
	var q Queue[int]
	workers := 0
	q.Init(&mu, func(n int) bool { got = append(got, n); return n != 99 }, func(f func()) bool {
		workers++
		go f()
		return true
	})
	for round := 0; round < 3; round++ {
		mu.Lock()
		for i := 0; i < 100; i++ {
			q.Push(round*100 + i)
		}
		q.WaitIdle()
		mu.Unlock()
	}
	for i, n := range got {
		if i > 0 && n <= got[i-1] {
			t.Fatalf("out of order at %d: %v", i, got[i-1:i+1])
		}
	}
	if got[len(got)-1] != 299 {
		t.Fatalf("last item %d, want 299", got[len(got)-1])
	}
	if workers < 3 {
		t.Fatalf("%d workers for 3 rounds: the worker must end when the queue is empty", workers)
	}
}

func TestQueueStopAndRefuse(t *testing.T) {
	var mu sync.Mutex
	var q Queue[int]
	q.Init(&mu, func(int) bool { return false }, nil)
	mu.Lock()
	q.Push(1)
	q.Push(2)
	q.WaitIdle()
	if q.Len() != 0 {
		t.Fatalf("a handler returning false drops the queue, %d left", q.Len())
	}
	mu.Unlock()

	var refused Queue[int]
	refused.Init(&mu, func(int) bool { return true }, func(func()) bool { return false })
	mu.Lock()
	refused.Push(1)
	if refused.Len() != 0 {
		t.Fatal("an owner that cannot start a worker drops what is queued")
	}
	refused.WaitIdle() // returns: nothing runs
	mu.Unlock()
}
