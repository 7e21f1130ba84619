package turnserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// streamListener is what pion accepts TCP and TLS connections from. pion
// reads each connection in a goroutine of its own with no deadline and
// keeps one that never authenticates forever; it does a TLS handshake
// under a 10 s timeout but leaves the connection open when it fails. So
// the listener is the server's: its accept loop counts connections without
// an allocation (pending) and refuses past a bound, gives each
// allocateTimeout to get an allocation (the read deadline, lifted while it
// has one), does TLS handshakes itself, and only then hands a connection
// to pion, as a streamConn.
type streamListener struct {
	inner     net.Listener
	tls       *tls.Config // nil: plain TCP
	transport Transport
	s         *Server

	ready chan *streamConn // unbuffered: a connection is pion's or still ours
	done  chan struct{}
	once  sync.Once
}

func newStreamListener(s *Server, inner net.Listener, tlsCfg *tls.Config, t Transport) *streamListener {
	return &streamListener{inner: inner, tls: tlsCfg, transport: t, s: s, ready: make(chan *streamConn), done: make(chan struct{})}
}

// Accept is pion's: the next connection ready to read TURN.
func (l *streamListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *streamListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *streamListener) Addr() net.Addr { return l.inner.Addr() }

// acceptLoop runs until the listener closes; Server.Close waits for it.
func (l *streamListener) acceptLoop() {
	s := l.s
	var backoff time.Duration
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait rather than spin
			// (net/http's Serve does the same).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("turn accept", zap.Stringer("transport", l.transport), zap.Error(err))
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			continue
		}
		backoff = 0
		c := s.admit(l, raw)
		if c == nil {
			continue
		}
		if l.tls == nil {
			l.handOver(c)
			continue
		}
		s.handshakes.Add(1)
		go func() {
			defer s.handshakes.Done()
			if err := c.handshake(l.tls); err != nil {
				s.stats.timedOutConns.Add(1)
				s.log.Debug("turn tls handshake", zap.Stringer("remote_addr", raw.RemoteAddr()), zap.Error(err))
				_ = c.Close()
				return
			}
			l.handOver(c)
		}()
	}
}

// handOver gives c to pion, or closes it if the listener closed first.
func (l *streamListener) handOver(c *streamConn) {
	select {
	case l.ready <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// connKey is a client by its two ends, as pion's events name it, and
// whether it came over a stream: UDP and TCP share Listen's port, so the
// ends alone could name a UDP client and a TCP one.
type connKey struct {
	remote, local netip.AddrPort
	stream        bool
}

// keyOf is the connKey of the client whose 5-tuple ends are src and dst.
func keyOf(src, dst net.Addr) connKey {
	_, udp := dst.(*net.UDPAddr)
	return connKey{remote: addrPortOf(src), local: addrPortOf(dst), stream: !udp}
}

// streamConn is a TCP or TLS connection as pion reads it: framed into
// whole STUN messages and ChannelData frames (RFC 8656 §11.5; pion frames
// again on top) so screen sees each request, with decorate applied to what
// pion writes.
type streamConn struct {
	net.Conn          // *net.TCPConn, or *tls.Conn once handshake ran
	raw      net.Conn // the TCP connection, for Server.Close to cut
	s        *Server
	l        *streamListener
	key      connKey
	frames   *bufio.Reader // what Read cuts frames from

	// Guarded by s.mu.
	allocated bool
	closed    bool

	closeOnce sync.Once
}

func (c *streamConn) handshake(cfg *tls.Config) error {
	tc := tls.Server(c.Conn, cfg)
	// The read deadline admit set bounds the handshake too.
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return err
	}
	_ = tc.SetWriteDeadline(time.Time{})
	c.s.mu.Lock()
	c.Conn = tc
	c.frames = bufio.NewReaderSize(tc, frameBuffer)
	c.s.mu.Unlock()
	return nil
}

// Read returns one frame per call; screen's answers go back here and
// the request never reaches pion.
func (c *streamConn) Read(p []byte) (int, error) {
	for {
		n, err := c.readFrame(p)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.s.stats.timedOutConns.Add(1)
				c.s.log.Debug("turn connection without allocation timed out",
					zap.Stringer("remote_addr", c.RemoteAddr()), zap.Stringer("transport", c.l.transport))
			}
			return 0, err
		}
		if reply := c.s.screen(p[:n], c.RemoteAddr(), c.LocalAddr()); reply != nil {
			if _, err := c.Conn.Write(reply); err != nil {
				return 0, err
			}
			continue
		}
		return n, nil
	}
}

// frameBuffer is each stream connection's read buffer; frames are read
// into the caller's buffer, so a frame may be longer.
const frameBuffer = 4096

// readFrame reads one whole STUN message or ChannelData frame into p: its
// length is in its first four bytes (RFC 8489 §5, RFC 8656 §12.4, padded
// to 4 bytes over a stream). Anything else, or a frame longer than p,
// ends the connection.
func (c *streamConn) readFrame(p []byte) (int, error) {
	head, err := c.frames.Peek(4)
	if err != nil {
		return 0, err
	}
	length := int(binary.BigEndian.Uint16(head[2:4]))
	var size int
	switch {
	case head[0]&0xC0 == 0: // a STUN message: a 20-byte header
		size = 20 + length
	case head[0]&0xC0 == 0x40: // ChannelData: channel numbers 0x4000-0x7FFF
		size = 4 + (length+3)&^3
	default:
		return 0, errBadFrame
	}
	if size > len(p) {
		return 0, fmt.Errorf("%w: %d bytes", errBadFrame, size)
	}
	return io.ReadFull(c.frames, p[:size])
}

func (c *streamConn) Write(p []byte) (int, error) {
	if _, err := c.Conn.Write(c.s.decorate(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close is pion's, when its read loop for the connection ends, or ours
// for a connection pion never got; Server.Close cuts raw and waits for
// this one. Its error is nil: a
// close_notify that cannot go to a client that reset is no news, and pion
// would log it as an error.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		if err := c.closeSocket(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.s.log.Debug("turn connection close", zap.Stringer("remote_addr", c.RemoteAddr()), zap.Error(err))
		}
		c.s.forget(c)
	})
	return nil
}

func (c *streamConn) closeSocket() error {
	c.s.mu.Lock()
	conn := c.Conn
	c.s.mu.Unlock()
	return conn.Close()
}
