package sipws

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// ipConns counts the open TCP connections of each source IP (IPv4 and
// IPv6 alike, per address). An entry lives only while its count is above
// zero, so the map never holds more entries than the process has sockets.
type ipConns struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

func newIPConns(max int) *ipConns { return &ipConns{max: max, n: map[netip.Addr]int{}} }

// acquire takes a place for one more connection of ip; false when ip has
// all it may have.
func (c *ipConns) acquire(ip netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] >= c.max {
		return false
	}
	c.n[ip]++
	return true
}

func (c *ipConns) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] <= 1 {
		delete(c.n, ip)
		return
	}
	c.n[ip]--
}

// limitedListener counts every accepted TCP connection against its source
// IP from the start, so HTTP connections that never upgrade count too, and
// closes those past limits.conns_per_ip at once, in the accept loop: no
// goroutine, no read, no answer. An HTTP 429 written and closed at once
// would mostly arrive as a reset (the request unread), and under TLS it
// would need a handshake first.
type limitedListener struct {
	net.Listener
	srv *Server
}

func (s *Server) limitListener(l net.Listener) net.Listener {
	return &limitedListener{Listener: l, srv: s}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrIP(c.RemoteAddr())
		if l.srv.perIP.acquire(ip) {
			return &trackedConn{Conn: c, srv: l.srv, ip: ip}, nil
		}
		l.srv.refuse(refusalConnsPerIP, ip, "tcp connection refused: too many from this address",
			zap.Stringer("remote_addr", c.RemoteAddr()), zap.Int("conns_per_ip", l.srv.limits.ConnsPerIP))
		if tc, ok := c.(*net.TCPConn); ok {
			// A reset, not a FIN: no TIME_WAIT kept for a refused socket.
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// trackedConn is an accepted connection, counted against its source IP
// until it closes. It also sees a read time out while a request is awaited
// (limits.upgrade_timeout), which net/http closes without a word.
type trackedConn struct {
	net.Conn
	srv *Server
	ip  netip.Addr

	state     atomic.Int32 // the http.ConnState net/http last reported
	sinceIdle atomic.Bool  // bytes came in since the state turned idle
	timedOut  atomic.Bool
	closed    atomic.Bool
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.srv.perIP.release(c.ip)
	}
	return err
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.Load() == int32(http.StateIdle) {
		c.sinceIdle.Store(true)
	}
	if err != nil && c.awaitingRequest() && errors.Is(err, os.ErrDeadlineExceeded) && c.timedOut.CompareAndSwap(false, true) {
		c.srv.refuse(refusalUpgradeTimeout, c.ip, "http request timed out before it was complete",
			zap.Stringer("remote_addr", c.RemoteAddr()), zap.Duration("dur", c.srv.limits.UpgradeTimeout))
	}
	return n, err
}

// awaitingRequest is true while a request is due: on a new connection (a
// TLS handshake included), or on a kept-alive one once the next request
// has begun. A kept-alive connection silent for the idle timeout is not a
// refusal; nor is anything after the upgrade (the WebSocket's own idle
// timeout) or net/http cutting its own background read.
func (c *trackedConn) awaitingRequest() bool {
	switch http.ConnState(c.state.Load()) {
	case http.StateNew:
		return true
	case http.StateIdle:
		return c.sinceIdle.Load()
	default:
		return false
	}
}

// connState is the http.Server's ConnState hook.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	tc, ok := tracked(c)
	if !ok {
		return
	}
	if state == http.StateIdle {
		tc.sinceIdle.Store(false)
	}
	tc.state.Store(int32(state))
}

// tracked finds the accepted connection, under crypto/tls for WSS.
func tracked(c net.Conn) (*trackedConn, bool) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, ok := c.(*trackedConn)
	return t, ok
}

// socketConn is the TCP connection under a trackedConn, for the idle
// watcher.
func socketConn(c net.Conn) net.Conn {
	if tc, ok := c.(*trackedConn); ok {
		c = tc.Conn
	}
	// A connection another listener handed over (the shared port of
	// internal/edge) names the socket under it when waiting on it is safe.
	if sc, ok := c.(interface{ SocketConn() net.Conn }); ok {
		return sc.SocketConn()
	}
	return c
}

// addrIP is the IP of a connection's remote address, IPv4-mapped IPv6
// addresses as IPv4; the zero Addr when it has none.
func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
