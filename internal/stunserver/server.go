package stunserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Server answers STUN Binding requests on its sockets until Close.
type Server struct {
	log   *zap.Logger
	h     *handler
	sock  sockets
	idle  time.Duration
	stats counters
	conns connSet

	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Addrs are the bound transport addresses, each for UDP and TCP alike.
// Without an alternate IP only Primary is set.
type Addrs struct {
	Primary netip.AddrPort // listen IP, listen port
	AltPort netip.AddrPort // listen IP, alternate port
	AltIP   netip.AddrPort // alternate IP, listen port
	AltBoth netip.AddrPort // alternate IP and port: OTHER-ADDRESS of answers from Primary
}

// New binds the sockets of cfg and serves them until Close. With
// cfg.AlternateIP set it binds four UDP sockets and four TCP listeners
// (RFC 5780 section 4.1), else one of each.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	p, err := cfg.plan()
	if err != nil {
		return nil, fmt.Errorf("stun server: %w", err)
	}
	sock, err := bind(p)
	if err != nil {
		return nil, fmt.Errorf("stun server: %w", err)
	}
	s := &Server{
		log:   log,
		h:     newHandler(sock.addrs, p.rfc5780(), p.software),
		sock:  sock,
		idle:  p.tcpIdle,
		conns: connSet{m: make(map[*net.TCPConn]struct{})},
		done:  make(chan struct{}),
	}
	for r := range role(numRoles) {
		if sock.udp[r] != nil {
			s.wg.Go(func() { s.serveUDP(r) })
		}
		if sock.tcp[r] != nil {
			s.wg.Go(func() { s.acceptTCP(r) })
		}
	}
	a := s.Addrs()
	fields := []zap.Field{zap.Stringer("listen", a.Primary), zap.Bool("rfc5780", p.rfc5780())}
	if p.rfc5780() {
		fields = append(fields, zap.Stringer("other_address", a.AltBoth))
	}
	log.Info("stun server listening", fields...)
	return s, nil
}

// Addrs gives the bound addresses; with port 0 in Listen, the ports the
// system chose.
func (s *Server) Addrs() Addrs {
	a := s.sock.addrs
	return Addrs{Primary: a[rolePrimary], AltPort: a[roleAltPort], AltIP: a[roleAltIP], AltBoth: a[roleAltBoth]}
}

// Stats reads the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Close closes every socket and connection and waits for every goroutine
// of the server to end. It may be called more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.sock.close()
		s.conns.closeAll()
		s.wg.Wait()
	})
	return s.closeErr
}

// sockets are the bound sockets by role; nil where the role is not served.
type sockets struct {
	udp   [numRoles]*net.UDPConn
	tcp   [numRoles]*net.TCPListener
	addrs [numRoles]netip.AddrPort
}

// maxBindAttempts bounds the retries when the system's choice of primary
// port leaves the alternate port (or the TCP one) taken.
const maxBindAttempts = 8

// bind binds the sockets of p. With port 0 the system picks the primary
// UDP port, and the other sockets must get theirs (the same port for TCP,
// the alternate port, the alternate IP) or it tries again.
func bind(p plan) (sockets, error) {
	attempts := 1
	if p.port == 0 {
		attempts = maxBindAttempts
	}
	var err error
	for range attempts {
		var s sockets
		if s, err = bindOnce(p); err == nil {
			return s, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return sockets{}, err
		}
	}
	if p.port != 0 {
		return sockets{}, err
	}
	return sockets{}, fmt.Errorf("%w after %d attempts: %w", errNoPortPair, attempts, err)
}

func bindOnce(p plan) (s sockets, err error) {
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	udpNet, tcpNet := "udp"+p.network, "tcp"+p.network
	first := netip.AddrPortFrom(p.ip, p.port)
	s.udp[rolePrimary], err = net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(first))
	if err != nil {
		return s, err // net.OpError names the operation and address
	}
	port := s.udp[rolePrimary].LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if p.rfc5780() && p.altPort == 0 && port == 65535 {
		return s, fmt.Errorf("listen udp %s: no port + 1: %w", first, syscall.EADDRINUSE)
	}
	s.addrs = p.addrs(port)
	for r, a := range s.addrs {
		if !a.IsValid() {
			continue
		}
		if r != int(rolePrimary) {
			if s.udp[r], err = net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(a)); err != nil {
				return s, err
			}
		}
		if s.tcp[r], err = net.ListenTCP(tcpNet, net.TCPAddrFromAddrPort(a)); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *sockets) close() error {
	var errs []error
	for r := range s.udp {
		if s.udp[r] != nil {
			errs = append(errs, s.udp[r].Close())
		}
		if s.tcp[r] != nil {
			errs = append(errs, s.tcp[r].Close())
		}
	}
	return errors.Join(errs...)
}

// logDecision writes one message's fate at debug level.
func (s *Server) logDecision(d decision, tr transport, local role, src netip.AddrPort) {
	if ce := s.log.Check(zap.DebugLevel, "stun message"); ce != nil {
		fields := []zap.Field{
			zap.Stringer("transport", tr),
			zap.Stringer("remote_addr", src),
			zap.Stringer("local", local),
			zap.Stringer("action", d.action),
		}
		if d.action == actionAnswer {
			fields = append(fields, zap.Stringer("from", d.from), zap.Stringer("to", d.to))
		}
		if d.code != 0 {
			fields = append(fields, zap.Int("status", d.code))
		}
		if d.legacy {
			fields = append(fields, zap.Bool("rfc3489", true))
		}
		if d.err != nil {
			fields = append(fields, zap.NamedError("reason", d.err))
		}
		ce.Write(fields...)
	}
}
