package turnserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/imsgate/imsgate/internal/pionlog"
	"github.com/imsgate/imsgate/internal/rawudp"
	"golang.org/x/time/rate"

	"github.com/imsgate/imsgate/internal/hostkey"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// limits are the bounds Config does not expose; tests shorten them.
type limits struct {
	// allocateTimeout is how long a TCP or TLS connection may go without
	// an allocation, TLS handshake included (RFC 8656 leaves it to the
	// server; a browser allocates at once).
	allocateTimeout time.Duration
	// maxPending bounds the TCP and TLS connections without an allocation;
	// connections with one are bounded by QuotaTotal.
	maxPending int
	// maxPermits bounds the peer addresses of one allocation, maxChannels
	// its channels (permits.go).
	maxPermits, maxChannels int
	// warnEvery and maxWarnKeys shape the refusal warnings (ratelog.go).
	warnEvery   time.Duration
	maxWarnKeys int
	now         func() time.Time
}

func defaultLimits() limits {
	return limits{
		allocateTimeout: 10 * time.Second,
		maxPending:      1024,
		maxPermits:      128,
		maxChannels:     128,
		warnEvery:       time.Minute,
		maxWarnKeys:     4096,
		now:             time.Now,
	}
}

// Addrs are the addresses the server listens on; zero when not served.
type Addrs struct{ UDP, TCP, TLS netip.AddrPort }

// Server is the TURN server: pion/turn's, with the gateway's credentials,
// peer policy, quotas and bounds (see the package doc).
//
// What pion does not do, screen does before it: refuse a ChannelBind to a
// refused peer 403, a request without an allocation 437, a TCP relay 442,
// and cap a LIFETIME at Config.MaxLifetime. What pion does not let it do:
// check a NONCE before those answers (screen).
type Server struct {
	log      *zap.Logger
	cfg      Config
	lim      limits
	auth     *authenticator
	policy   *peerPolicy
	permits  *permits
	channels *channels
	quotas   *quotas
	warns    *warnLimiter
	software stun.Setter // nil: no SOFTWARE
	stats    counters

	pion *turn.Server
	udp  *packetConn // pion's view of the UDP listener
	path *dataPath   // UDP clients' datagrams (datapath.go)
	// streams are the TCP and TLS listeners: Listen's, TLSListen's and
	// those handed in (Config.Streams).
	streams []*streamListener
	addrs   Addrs
	// relayIP and externalIP name the relays (RelayTransport).
	relayIP, externalIP netip.Addr

	loops      sync.WaitGroup // accept loops
	handshakes sync.WaitGroup // TLS handshakes under way

	mu      sync.Mutex
	drained *sync.Cond // on mu: conns, relays or allocs shrank
	closing bool
	conns   map[connKey]*streamConn
	pending int // conns without an allocation
	// pendingBy counts them by source (an IPv4 address, an IPv6 /64):
	// one host may not hold all of maxPending.
	pendingBy map[netip.Prefix]int
	relays    map[*relayConn]struct{}
	allocs    int
	// allocations by 5-tuple, and the transport of each relay port's
	// client (RelayTransport).
	allocated map[connKey]allocation
	relayPort map[uint16]Transport

	closeOnce sync.Once
	closeErr  error
}

// New listens on cfg's addresses and serves TURN until Close.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	return newServer(cfg, log, defaultLimits())
}

func newServer(cfg Config, log *zap.Logger, lim limits) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		log:      log,
		cfg:      cfg,
		lim:      lim,
		auth:     newAuthenticator(cfg, lim.now),
		permits:  newPermits(lim.maxPermits),
		channels: newChannels(lim.maxChannels),
		quotas:   newQuotas(cfg.QuotaPerUser, cfg.QuotaTotal),
		warns:    newWarnLimiter(lim.warnEvery, lim.maxWarnKeys),
		conns:    make(map[connKey]*streamConn),
		relays:   make(map[*relayConn]struct{}),

		allocated: make(map[connKey]allocation),
		pendingBy: make(map[netip.Prefix]int),
		relayPort: make(map[uint16]Transport),
	}
	s.drained = sync.NewCond(&s.mu)
	s.relayIP, _ = netip.ParseAddr(cfg.RelayIP)
	s.externalIP, _ = netip.ParseAddr(cfg.ExternalIP)
	s.relayIP, s.externalIP = s.relayIP.Unmap(), s.externalIP.Unmap()
	if cfg.Software != "" {
		sw := stun.NewSoftware(cfg.Software)
		if err := sw.AddTo(new(stun.Message)); err != nil {
			return nil, fmt.Errorf("%w: Software: %v", ErrConfig, err)
		}
		s.software = sw
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	s.policy = newPeerPolicy(cfg, cfg.ownAddrs(), s.addrs.UDP.Port())
	sc := turn.ServerConfig{
		Realm:        cfg.Realm,
		AuthHandler:  s.authHandler,
		QuotaHandler: s.quotaHandler,
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnPermissionCreated: s.onPermissionCreated,
			OnPermissionDeleted: s.onPermissionDeleted,
			OnChannelCreated:    s.onChannelCreated,
			OnChannelDeleted:    s.onChannelDeleted,
		},
		AllocationLifetime: cfg.lifetime(),
		LoggerFactory:      pionlog.Factory(log, rate.NewLimiter(rate.Limit(5), 20)),
	}
	if s.udp != nil {
		sc.PacketConnConfigs = []turn.PacketConnConfig{{PacketConn: s.udp, RelayAddressGenerator: newRelayGenerator(s, s.path), PermissionHandler: s.permissionHandler(s.udp.LocalAddr())}}
	}
	for _, l := range s.streams {
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: l, RelayAddressGenerator: newRelayGenerator(s, nil), PermissionHandler: s.permissionHandler(l.Addr())})
	}
	p, err := turn.NewServer(sc)
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("turn server: %w", err)
	}
	s.pion = p
	for _, l := range s.streams {
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			l.acceptLoop()
		}()
	}
	log.Info("turn server listening",
		zap.Stringer("udp", s.addrs.UDP), zap.Stringer("tcp", s.addrs.TCP), zap.Stringer("tls", s.addrs.TLS),
		zap.String("relay_ip", cfg.RelayIP), zap.String("external_ip", cfg.ExternalIP),
		zap.String("relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax)))
	return s, nil
}

// listen binds Listen over UDP and TCP (port 0: a port free for both)
// and TLSListen.
func (s *Server) listen() error {
	var lc net.ListenConfig
	ctx := context.Background()
	if s.cfg.Listen != "" {
		udpAddr, err := udpListenAddr(s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("turn listen udp %s: %w", s.cfg.Listen, err)
		}
		tries := 1
		if udpAddr.Port() == 0 {
			tries = 16 // the UDP port may be taken over TCP
		}
		for range tries {
			var sock *rawudp.Socket
			if sock, err = rawudp.Listen(udpAddr, listenerBuffer); err != nil {
				return fmt.Errorf("turn listen udp %s: %w", s.cfg.Listen, err)
			}
			var ln net.Listener
			bound := net.JoinHostPort(udpAddr.Addr().String(), strconv.Itoa(int(sock.LocalAddr().Port())))
			if ln, err = lc.Listen(ctx, "tcp", bound); err != nil {
				_ = sock.Close()
				continue
			}
			d, err := newDataPath(sock, s.relaySpec(), &s.stats, s.log)
			if err != nil {
				_ = sock.Close()
				_ = ln.Close()
				return fmt.Errorf("turn data path: %w", err)
			}
			s.path = d
			s.udp = &packetConn{s: s, d: d}
			s.streams = append(s.streams, newStreamListener(s, ln, nil, TransportTCP))
			s.addrs.UDP, s.addrs.TCP = sock.LocalAddr(), addrPortOf(ln.Addr())
			break
		}
		if err != nil {
			return fmt.Errorf("turn listen tcp %s: %w", s.cfg.Listen, err)
		}
	}
	if s.cfg.TLSListen != "" {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.TLSListen)
		if err != nil {
			s.closeSockets()
			return fmt.Errorf("turn listen tls %s: %w", s.cfg.TLSListen, err)
		}
		s.streams = append(s.streams, newStreamListener(s, ln, s.cfg.tlsConfig(), TransportTLS))
		s.addrs.TLS = addrPortOf(ln.Addr())
	}
	for _, st := range s.cfg.Streams {
		var tlsCfg *tls.Config
		if st.Handshake {
			tlsCfg = s.cfg.tlsConfig()
		}
		s.streams = append(s.streams, newStreamListener(s, st.Listener, tlsCfg, st.Transport))
	}
	return nil
}

// listenerBuffer is the UDP listener's receive and send buffer: every UDP
// client's datagrams meet there.
const listenerBuffer = 4 << 20

// udpListenAddr is Listen as an address to bind: a host name resolved, no
// host the IPv6 wildcard (which takes IPv4 too) where the host has IPv6.
func udpListenAddr(hostport string) (netip.AddrPort, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ua, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := unmapAddrPort(ua.AddrPort())
	if host == "" {
		ip := netip.IPv6Unspecified()
		if !hasIPv6() {
			ip = netip.IPv4Unspecified()
		}
		ap = netip.AddrPortFrom(ip, ap.Port())
	}
	return ap, nil
}

// hasIPv6 tells whether an IPv6 socket can be made here.
func hasIPv6() bool {
	s, err := rawudp.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), 0), 0)
	if err != nil {
		return false
	}
	_ = s.Close()
	return true
}

// relaySpec is where the data path binds relays and what it tells clients.
func (s *Server) relaySpec() relaySpec {
	ext := s.externalIP
	if !ext.IsValid() {
		ext = s.relayIP
	}
	return relaySpec{ip: s.relayIP, external: ext, min: s.cfg.RelayPortMin, max: s.cfg.RelayPortMax}
}

// closeSockets undoes listen when pion does not start.
func (s *Server) closeSockets() {
	if s.udp != nil {
		_ = s.udp.Close()
	}
	for _, l := range s.streams {
		_ = l.Close()
	}
}

// Addrs are the bound addresses (the ports chosen for port 0).
func (s *Server) Addrs() Addrs { return s.addrs }

// Stats is a snapshot of the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Close stops listening, closes every connection and allocation, and
// returns once pion has let go of all of them.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.mu.Lock()
	s.closing = true // no new relay from here (trackRelay)
	s.mu.Unlock()

	// pion closes the UDP socket and our listeners; each of its loops then
	// closes its allocations. Its TCP/TLS connections it leaves open.
	err := s.pion.Close()
	s.loops.Wait()
	// Cut the TCP connections (a TLS close_notify could wait on a client
	// that does not read, under s.mu); pion's read loops end and call
	// c.Close.
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.raw.Close()
	}
	s.mu.Unlock()
	s.handshakes.Wait()
	s.mu.Lock()
	for len(s.conns) > 0 {
		s.drained.Wait()
	}
	// An Allocate in flight as its listener's loop ended makes a relay
	// pion never closes.
	left := make([]*relayConn, 0, len(s.relays))
	for rc := range s.relays {
		left = append(left, rc)
	}
	s.mu.Unlock()
	for _, rc := range left {
		_ = rc.Close()
	}
	// pion deletes an allocation (our onAllocationDeleted) when its relay's
	// read loop sees the socket closed.
	s.mu.Lock()
	for len(s.relays) > 0 || s.allocs > 0 {
		s.drained.Wait()
	}
	s.mu.Unlock()

	st := s.Stats()
	s.log.Info("turn server stopped",
		zap.Int64("allocations_udp", st.Created.UDP), zap.Int64("allocations_tcp", st.Created.TCP),
		zap.Int64("allocations_tls", st.Created.TLS),
		zap.Uint64("refused_auth", st.RefusedAuth), zap.Uint64("refused_quota", st.RefusedQuota),
		zap.Uint64("refused_peer", st.RefusedPeer), zap.Uint64("refused_permits", st.RefusedPermits),
		zap.Uint64("dropped_to_self", st.DroppedToSelf),
		zap.Uint64("packets_to_peers", st.ToPeers.Packets), zap.Uint64("packets_from_peers", st.FromPeers.Packets))
	if err != nil {
		return fmt.Errorf("turn close: %w", err)
	}
	return nil
}

// admit registers a TCP/TLS connection, or closes it when too many are
// waiting for an allocation or the server is closing.
func (s *Server) admit(l *streamListener, raw net.Conn) *streamConn {
	key := connKey{remote: addrPortOf(raw.RemoteAddr()), local: addrPortOf(raw.LocalAddr()), stream: true}
	s.mu.Lock()
	if s.closing || s.pending >= s.lim.maxPending || s.pendingBy[hostkey.Of(key.remote.Addr())] >= maxPendingPerSource {
		closing := s.closing
		s.mu.Unlock()
		if !closing {
			s.stats.refusedConns.Add(1)
		}
		_ = raw.Close()
		if !closing {
			if s.warns.allow(warnKey{kind: warnConn, client: key.remote.Addr()}, s.lim.now()) {
				s.log.Warn("turn connection refused: too many without allocation",
					zap.Stringer("remote_addr", raw.RemoteAddr()), zap.Stringer("transport", l.transport),
					zap.Int("pending", s.lim.maxPending))
			}
		}
		return nil
	}
	c := &streamConn{Conn: raw, raw: raw, s: s, l: l, key: key, frames: bufio.NewReaderSize(raw, frameBuffer)}
	s.conns[key] = c
	s.waiting(c, +1)
	s.mu.Unlock()
	// Read and write: a TLS handshake writes too.
	_ = raw.SetDeadline(s.lim.now().Add(s.lim.allocateTimeout))
	if l.tls == nil {
		_ = raw.SetWriteDeadline(time.Time{})
	}
	return c
}

// maxPendingPerSource bounds one source's connections without an
// allocation (a browser opens one or two).
const maxPendingPerSource = 16

// waiting counts c in (+1) or out (-1) of the connections waiting for an
// allocation. Under s.mu.
func (s *Server) waiting(c *streamConn, d int) {
	s.pending += d
	src := hostkey.Of(c.key.remote.Addr())
	if s.pendingBy[src] += d; s.pendingBy[src] <= 0 {
		delete(s.pendingBy, src)
	}
}

// forget is a connection's last word.
func (s *Server) forget(c *streamConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.closed = true
	if !c.allocated {
		s.waiting(c, -1)
	}
	if s.conns[c.key] == c {
		delete(s.conns, c.key)
	}
	s.drained.Broadcast()
}

func (s *Server) trackRelay(rc *relayConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.relays[rc] = struct{}{}
	return true
}

func (s *Server) untrackRelay(rc *relayConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.relays, rc)
	// The port names no relay of ours now, whatever pion's events say.
	delete(s.relayPort, addrPortOf(rc.LocalAddr()).Port())
	s.drained.Broadcast()
}

// transportOf is how the client of an allocation came (pion's events
// say "UDP" for all): a stream connection's listener says, else UDP.
// Under s.mu.
func (s *Server) transportOf(src, dst net.Addr) Transport {
	if c := s.conns[keyOf(src, dst)]; c != nil {
		return c.l.transport
	}
	if _, ok := dst.(*net.UDPAddr); ok {
		return TransportUDP
	}
	return TransportUnknown
}

// allocation is what the server keeps of one of pion's allocations.
type allocation struct {
	transport Transport
}

// RelayTransport tells whether addr is one of this server's relays, and
// how that relay's client reaches the server: the gateway logs a call's
// media path by it.
func (s *Server) RelayTransport(addr netip.AddrPort) (Transport, bool) {
	ip := addr.Addr().Unmap()
	if ip != s.relayIP && ip != s.externalIP && !s.relayIP.IsUnspecified() {
		return TransportUnknown, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.relayPort[addr.Port()]
	return t, ok
}
