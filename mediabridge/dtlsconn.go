package mediabridge

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// dtlsQueue is how many DTLS records wait for the handshake goroutine; a
// handshake flight is a few records, more means a flood and is dropped.
const dtlsQueue = 32

// dtlsPacketConn is the net.PacketConn pion/dtls runs over for one session:
// the poll loop delivers the session's DTLS records (RFC
// 7983: first byte 20-63) and writes go out through the shared socket, or
// the browser's ICE-TCP connection, to the browser's current address.
type dtlsPacketConn struct {
	sock   *webrtcSocket
	remote func() (netip.AddrPort, bool)
	in     chan []byte

	closeOnce sync.Once
	closed    chan struct{}

	mu           sync.Mutex
	readDeadline time.Time
	deadlineSet  chan struct{} // closed and replaced when the deadline changes
}

func newDTLSPacketConn(sock *webrtcSocket, remote func() (netip.AddrPort, bool)) *dtlsPacketConn {
	return &dtlsPacketConn{
		sock:        sock,
		remote:      remote,
		in:          make(chan []byte, dtlsQueue),
		closed:      make(chan struct{}),
		deadlineSet: make(chan struct{}),
	}
}

// deliver hands a copy of a record to the reader; it never blocks the
// poll loop.
func (c *dtlsPacketConn) deliver(p []byte) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case c.in <- append([]byte(nil), p...):
		return true
	default:
		return false
	}
}

func (c *dtlsPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		deadline, changed := c.readDeadline, c.deadlineSet
		c.mu.Unlock()
		var (
			timer   *time.Timer
			expired <-chan time.Time
		)
		if !deadline.IsZero() {
			wait := time.Until(deadline)
			if wait <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case pkt := <-c.in:
			stopTimer(timer)
			addr, _ := c.remote()
			return copy(p, pkt), net.UDPAddrFromAddrPort(addr), nil
		case <-c.closed:
			stopTimer(timer)
			return 0, nil, net.ErrClosed
		case <-changed:
			stopTimer(timer) // read again under the new deadline
		case <-expired:
			return 0, nil, os.ErrDeadlineExceeded
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// WriteTo ignores addr: the browser's nominated address is where DTLS goes.
func (c *dtlsPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	addr, ok := c.remote()
	if !ok {
		// No address yet: like a lost datagram, DTLS retransmits.
		return len(p), nil
	}
	if err := c.sock.writeToShared(p, addr); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *dtlsPacketConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *dtlsPacketConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.sock.udp.LocalAddr()) }

func (c *dtlsPacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *dtlsPacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	close(c.deadlineSet)
	c.deadlineSet = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline is a no-op: writes to a UDP socket do not block.
func (c *dtlsPacketConn) SetWriteDeadline(time.Time) error { return nil }
