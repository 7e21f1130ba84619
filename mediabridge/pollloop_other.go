//go:build !linux

package mediabridge

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// readBatch is 1 where recvmmsg(2) is not available.
const readBatch = 1

// pollLoop is a goroutine per socket where there is no epoll: each reads
// its socket and runs the handler with scratch space of its own.
type pollLoop struct {
	log   *zap.Logger
	web   *udpSocket
	mu    sync.Mutex
	socks map[*udpSocket]chan struct{} // closed when the socket's reader ends
	reads atomic.Uint64
}

func newPollLoop(web *udpSocket, log *zap.Logger) (*pollLoop, error) {
	return &pollLoop{log: log, web: web, socks: map[*udpSocket]chan struct{}{}}, nil
}

func (l *pollLoop) add(s *udpSocket, handle packetHandler, _ bool) error {
	done := make(chan struct{})
	l.mu.Lock()
	l.socks[s] = done
	l.mu.Unlock()
	go func() {
		defer close(done)
		sc := newLoopScratch(l.web)
		buf := make([]byte, maxPacket)
		for {
			n, from, err := s.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// As on Linux, a failed read (an oversized datagram, an
				// ICMP error) costs one datagram, not the socket.
				l.log.Debug("media socket read", zap.Error(err))
				continue
			}
			l.reads.Add(1)
			handle(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), sc)
		}
	}()
	return nil
}

// remove closes s to end its reader and waits for it.
func (l *pollLoop) remove(s *udpSocket) {
	l.mu.Lock()
	done := l.socks[s]
	delete(l.socks, s)
	l.mu.Unlock()
	if done != nil {
		_ = s.close()
		<-done
	}
}

func (l *pollLoop) close() {}

// webBatch writes each datagram toward a browser at once.
type webBatch struct {
	sock *udpSocket
	buf  [maxPacket + srtpOverhead]byte
}

func (b *webBatch) init(sock *udpSocket) { b.sock = sock }

func (b *webBatch) slot() []byte { return b.buf[:0] }

func (b *webBatch) commit(size int, to netip.AddrPort) error {
	return b.sock.writeTo(b.buf[:size], to)
}

func (b *webBatch) flush() {}
