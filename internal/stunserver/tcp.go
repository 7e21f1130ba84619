package stunserver

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/imsgate/imsgate/internal/hostkey"

	"github.com/pion/stun/v4"
)

const (
	// defaultTCPIdle closes a connection that sends no message for that
	// long. RFC 8489 section 6.2.2 lets the client close; a server that
	// never did would keep every abandoned connection.
	defaultTCPIdle = 30 * time.Second
	// tcpWriteTimeout bounds an answer to a client that does not read.
	tcpWriteTimeout = 5 * time.Second
	// maxTCPConns bounds the connections served at once, and with
	// maxTCPMessage the memory they hold (1 MiB of buffers).
	maxTCPConns = 256
	// maxTCPMessage is the largest STUN message read from a stream: room
	// for a PADDING of MaxPadding and the rest of a request. A longer one
	// closes the connection, as the stream cannot be resynchronised.
	maxTCPMessage = 4096
)

// acceptTCP accepts on the listener of role r until it is closed.
func (s *Server) acceptTCP(r role) {
	ln := s.sock.tcp[r]
	var backoff time.Duration
	for {
		conn, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait, as net/http does,
			// rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-s.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if !s.conns.add(conn) {
			s.stats.tcpRefused.Add(1)
			_ = conn.Close()
			continue
		}
		s.wg.Go(func() {
			defer s.conns.remove(conn)
			s.serveTCP(conn, r)
		})
	}
}

// serveTCP reads STUN messages back to back from conn (RFC 8489 section
// 6.2.2: over TCP the header's length frames each message) and answers
// each on conn, until the client closes, idles, or sends what cannot be
// framed.
func (s *Server) serveTCP(conn *net.TCPConn, r role) {
	defer conn.Close()
	ra := conn.RemoteAddr().(*net.TCPAddr).AddrPort()
	remote := netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
	buf := make([]byte, maxTCPMessage)
	in, out := stun.New(), stun.New()
	for {
		// One deadline for the whole message, so a client trickling a
		// byte at a time holds the connection no longer than one idle.
		_ = conn.SetReadDeadline(time.Now().Add(s.idle))
		if _, err := io.ReadFull(conn, buf[:headerSize]); err != nil {
			return
		}
		n := headerSize + int(binary.BigEndian.Uint16(buf[2:4]))
		if buf[0]&0xC0 != 0 || n > len(buf) {
			why := errFrameTooLong
			if buf[0]&0xC0 != 0 {
				why = errNotSTUN
			}
			s.stats.malformed.Add(1)
			s.logDecision(decision{action: actionDrop, err: why}, transportTCP, r, remote)
			return
		}
		if _, err := io.ReadFull(conn, buf[headerSize:n]); err != nil {
			return
		}
		s.stats.tcpRequests.Add(1)
		d := s.h.handle(buf[:n], transportTCP, r, remote, in, out)
		s.stats.count(d, r)
		s.logDecision(d, transportTCP, r, remote)
		if d.action != actionAnswer && d.action != actionRefuse {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
		if _, err := conn.Write(out.Raw); err != nil {
			s.stats.sendErrors.Add(1)
			return
		}
	}
}

// connSet holds the open TCP connections, so Close can close them, and
// counts them by source so one host cannot take them all.
type connSet struct {
	mu     sync.Mutex
	m      map[*net.TCPConn]struct{}
	by     map[netip.Prefix]int
	closed bool
}

// maxTCPConnsPerSource bounds one source's connections (an IPv4 address,
// an IPv6 /64): a client needs one.
const maxTCPConnsPerSource = 16

// add takes conn in unless the server is closing or full, in all or for
// conn's source.
func (c *connSet) add(conn *net.TCPConn) bool {
	src := sourceOf(conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.m) >= maxTCPConns || c.by[src] >= maxTCPConnsPerSource {
		return false
	}
	if c.by == nil {
		c.by = map[netip.Prefix]int{}
	}
	c.m[conn] = struct{}{}
	c.by[src]++
	return true
}

func (c *connSet) remove(conn *net.TCPConn) {
	src := sourceOf(conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[conn]; !ok {
		return
	}
	delete(c.m, conn)
	if c.by[src]--; c.by[src] <= 0 {
		delete(c.by, src)
	}
}

// sourceOf is the source a connection counts under.
func sourceOf(conn *net.TCPConn) netip.Prefix {
	return hostkey.Of(conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
}

// closeAll closes every connection and refuses new ones.
func (c *connSet) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for conn := range c.m {
		_ = conn.Close()
	}
}
