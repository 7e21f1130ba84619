//go:build !linux

package mediabridge

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/internal/rawudp"
	"go.uber.org/zap"
)

// readBatch is 1 where recvmmsg(2) is not available.
const readBatch = 1

// pollLoop is a goroutine per socket where there is no epoll: each reads
// its socket and runs the handler with scratch space of its own. The
// shared WebRTC socket's reader also runs the waker's drain, so browser
// packets from ICE-TCP meet the same SRTP owner as those over UDP.
// Handlers run one at a time (handling), as on Linux's single loop: a
// session's state for both legs (its call quality, qos.go) has one owner.
type pollLoop struct {
	log      *zap.Logger
	web      *rawudp.Socket
	tcp      *tcpServer
	handling sync.Mutex
	mu       sync.Mutex
	socks    map[*rawudp.Socket]chan struct{} // closed when the socket's reader ends
	waker    atomic.Pointer[loopWaker]
	reads    atomic.Uint64
}

func newPollLoop(web *rawudp.Socket, tcp *tcpServer, log *zap.Logger) (*pollLoop, error) {
	return &pollLoop{log: log, web: web, tcp: tcp, socks: map[*rawudp.Socket]chan struct{}{}}, nil
}

// loopWaker runs drain on the shared socket's reader: wake interrupts its
// read with a deadline in the past.
type loopWaker struct {
	conn    *net.UDPConn
	drain   func(*loopScratch)
	pending atomic.Bool
}

func (w *loopWaker) wake() {
	if w.pending.CompareAndSwap(false, true) {
		_ = w.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// run clears the deadline before draining: a wake meanwhile sets it again.
func (w *loopWaker) run(sc *loopScratch) {
	_ = w.conn.SetReadDeadline(time.Time{})
	w.pending.Store(false)
	w.drain(sc)
}

func (l *pollLoop) addWaker(drain func(*loopScratch)) (*loopWaker, error) {
	w := &loopWaker{conn: l.web.Conn(), drain: drain}
	l.waker.Store(w)
	return w, nil
}

func (l *pollLoop) removeWaker(w *loopWaker) { l.waker.CompareAndSwap(w, nil) }

func (l *pollLoop) add(s *rawudp.Socket, handle packetHandler, _ bool) error {
	done := make(chan struct{})
	l.mu.Lock()
	l.socks[s] = done
	l.mu.Unlock()
	go func() {
		defer close(done)
		sc := newLoopScratch(l.web, l.tcp)
		buf := make([]byte, maxPacket)
		for {
			n, from, err := s.Conn().ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if errors.Is(err, os.ErrDeadlineExceeded) && s == l.web {
					if w := l.waker.Load(); w != nil {
						l.handling.Lock()
						sc.now = time.Now()
						w.run(sc)
						l.handling.Unlock()
					}
					continue
				}
				// As on Linux, a failed read (an oversized datagram, an
				// ICMP error) costs one datagram, not the socket.
				l.log.Debug("media socket read", zap.Error(err))
				continue
			}
			l.reads.Add(1)
			l.handling.Lock()
			sc.now = time.Now()
			handle(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), sc)
			sc.web.flush()
			l.handling.Unlock()
		}
	}()
	return nil
}

// remove closes s to end its reader and waits for it, and for a handler
// another reader is running: as on Linux, no handler of s's session runs
// once it returns.
func (l *pollLoop) remove(s *rawudp.Socket) {
	l.mu.Lock()
	done := l.socks[s]
	delete(l.socks, s)
	l.mu.Unlock()
	if done != nil {
		_ = s.Close()
		<-done
	}
	l.handling.Lock()
	l.handling.Unlock() //nolint:staticcheck // an empty section: waits for the handler in flight
}

func (l *pollLoop) close() {}

// webBatch writes each datagram toward a browser at once; an ICE-TCP
// browser's goes to its connection's queue.
type webBatch struct {
	sock *rawudp.Socket
	tcp  *tcpServer
	buf  [maxPacket + srtpOverhead]byte
}

func (b *webBatch) init(sock *rawudp.Socket, tcp *tcpServer) { b.sock, b.tcp = sock, tcp }

func (b *webBatch) slot() []byte { return b.buf[:0] }

func (b *webBatch) commit(size int, to netip.AddrPort) error {
	if isTCPAddr(to) {
		return b.tcp.send(b.buf[:size], to)
	}
	return b.sock.WriteTo(b.buf[:size], to)
}

func (b *webBatch) flush() {}
