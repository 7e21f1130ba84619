//go:build linux

package sipws

import (
	"net"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/imsgate/imsgate/internal/netpoll"
)

// idleEvents is how many readable connections one poll returns at most.
const idleEvents = 128

// idleWatcher holds the sockets of parked connections — silent browsers
// with nothing buffered — in one epoll set, one-shot, so a parked
// connection has no goroutine at all. When a socket turns readable (a
// frame, a close, a reset) the watcher resumes its connection, whose reader
// goroutine starts again.
type idleWatcher struct {
	set *netpoll.Set

	mu    sync.Mutex
	conns map[int32]*Conn // by socket descriptor, while armed or parked

	done chan struct{}
}

func newIdleWatcher() (*idleWatcher, error) {
	set, err := netpoll.New("ws-idle-epoll", idleEvents)
	if err != nil {
		return nil, err
	}
	w := &idleWatcher{set: set, conns: map[int32]*Conn{}, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// socketFD is the descriptor of a TCP connection (for WSS the one under
// crypto/tls; Conn.tlsIdle makes parking it safe), or -1.
func socketFD(c net.Conn) int {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(s uintptr) { fd = int(s) }) != nil {
		return -1
	}
	return fd
}

// arm watches c's socket for one readable event. c.parked must be set.
func (w *idleWatcher) arm(c *Conn) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	const events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
	fd := int32(c.fd)
	if w.conns[fd] == c {
		return w.set.Modify(c.fd, events)
	}
	if err := w.set.Add(c.fd, events); err != nil {
		return err
	}
	w.conns[fd] = c
	return nil
}

// forget stops watching c's socket; it must run before the socket closes,
// since its descriptor number is then reused.
func (w *idleWatcher) forget(c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns[int32(c.fd)] == c {
		delete(w.conns, int32(c.fd))
		w.set.Remove(c.fd)
	}
}

// close ends the watcher once no connection is left.
func (w *idleWatcher) close() {
	_ = w.set.Close() // wakes the parked Wait with an error
	<-w.done
}

func (w *idleWatcher) run() {
	defer close(w.done)
	for {
		events, err := w.set.Wait()
		if err != nil {
			return
		}
		w.mu.Lock()
		for _, ev := range events {
			if c := w.conns[ev.Fd]; c != nil {
				go c.resume()
			}
		}
		w.mu.Unlock()
	}
}
