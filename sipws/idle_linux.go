//go:build linux

package sipws

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idleEvents is how many readable connections one poll returns at most.
const idleEvents = 128

// idleWatcher holds the sockets of parked connections — silent browsers
// with nothing buffered — in one epoll set, one-shot, so a parked
// connection has no goroutine at all. When a socket turns readable (a
// frame, a close, a reset) the watcher resumes its connection, whose reader
// goroutine starts again. The watcher itself parks in Go's netpoller on the
// epoll descriptor.
type idleWatcher struct {
	epfd int
	ep   *os.File
	rc   syscall.RawConn

	mu    sync.Mutex
	conns map[int32]*Conn // by socket descriptor, while armed or parked

	events [idleEvents]unix.EpollEvent // the watcher goroutine's
	pollFn func(uintptr) bool
	ready  int
	errno  unix.Errno
	done   chan struct{}
}

func newIdleWatcher() (*idleWatcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "ws-idle-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	w := &idleWatcher{epfd: epfd, ep: ep, rc: rc, conns: map[int32]*Conn{}, done: make(chan struct{})}
	w.pollFn = w.poll
	go w.run()
	return w, nil
}

// socketFD is the descriptor of a plain TCP connection, or -1: a TLS
// connection may hold decrypted bytes the socket no longer shows, so it is
// never parked.
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
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(c.fd)}
	op := unix.EPOLL_CTL_MOD
	if w.conns[int32(c.fd)] != c {
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(w.epfd, op, c.fd, &ev); err != nil {
		return fmt.Errorf("watch idle ws socket: %w", err)
	}
	w.conns[int32(c.fd)] = c
	return nil
}

// forget stops watching c's socket; it must run before the socket closes,
// since its descriptor number is then reused.
func (w *idleWatcher) forget(c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns[int32(c.fd)] == c {
		delete(w.conns, int32(c.fd))
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	}
}

// close ends the watcher once no connection is left.
func (w *idleWatcher) close() {
	_ = w.ep.Close() // wakes the parked poll with an error
	<-w.done
}

func (w *idleWatcher) run() {
	defer close(w.done)
	for {
		if err := w.rc.Read(w.pollFn); err != nil || w.errno != 0 {
			return
		}
		w.mu.Lock()
		for i := range w.ready {
			c := w.conns[w.events[i].Fd]
			if c == nil {
				continue
			}
			go c.resume()
		}
		w.mu.Unlock()
	}
}

// poll is the RawConn.Read callback (bound once): false means "nothing
// ready, park".
func (w *idleWatcher) poll(uintptr) bool {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(w.epfd),
			uintptr(unsafe.Pointer(&w.events[0])), idleEvents, 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		w.ready, w.errno = int(r), e
		return w.ready > 0 || e != 0
	}
}
