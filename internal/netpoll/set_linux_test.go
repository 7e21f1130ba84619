//go:build linux

package netpoll

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatalf("pipe: %v", err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

// TestWaitOneShotAndClose: Wait parks until a descriptor is ready and
// names it; a one-shot descriptor fires once until Modify re-arms it;
// Close wakes a parked Wait with an error and refuses later changes.
func TestWaitOneShotAndClose(t *testing.T) {
	s, err := New("test", 8)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r, w := pipe(t)
	if err := s.Add(r, unix.EPOLLIN|unix.EPOLLONESHOT); err != nil {
		t.Fatalf("Add: %v", err)
	}
	type result struct {
		fds []int32
		err error
	}
	waits := make(chan result)
	go func() {
		for {
			evs, err := s.Wait()
			var fds []int32
			for _, ev := range evs {
				fds = append(fds, ev.Fd)
			}
			waits <- result{fds, err}
			if err != nil {
				return
			}
		}
	}()
	next := func() result {
		t.Helper()
		select {
		case res := <-waits:
			return res
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return")
			return result{}
		}
	}
	_, _ = unix.Write(w, []byte("x"))
	if res := next(); res.err != nil || len(res.fds) != 1 || res.fds[0] != int32(r) {
		t.Fatalf("Wait = %v, %v; want fd %d", res.fds, res.err, r)
	}
	// Still readable, but one-shot: nothing until re-armed.
	select {
	case res := <-waits:
		t.Fatalf("one-shot fd fired again: %v", res)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Modify(r, unix.EPOLLIN|unix.EPOLLONESHOT); err != nil {
		t.Fatalf("Modify: %v", err)
	}
	if res := next(); res.err != nil || len(res.fds) != 1 {
		t.Fatalf("Wait after Modify = %v, %v", res.fds, res.err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if res := next(); res.err == nil {
		t.Fatal("Wait after Close returned no error")
	}
	if err := s.Add(w, unix.EPOLLOUT); err != ErrClosed {
		t.Fatalf("Add after Close = %v, want ErrClosed", err)
	}
}
