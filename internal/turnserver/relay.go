package turnserver

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/turn/v5"
)

// relayRetries is how many random ports of the range pion's generator
// tries before giving up (its default is 10). A bind that fails costs a
// syscall; with half the range taken 256 tries all fail once in 2^256, and
// even with 99% taken 92% of Allocates still find a port.
const relayRetries = 256

// relayGenerator is the RelayAddressGenerator of every listener: pion's
// port-range generator (bind on RelayIP, advertise ExternalIP), with what
// pion leaves to it checked first:
//   - a port the client asked for (RESERVATION-TOKEN's reserved port + 1,
//     or EVEN-PORT's) must be in the range too; pion's generator binds any;
//   - the user's quota is taken here, where the relay is made (quota.go);
//   - TCP relays (RFC 6062) are refused.
//
// pion answers all its errors with 508 Insufficient Capacity.
//
// The UDP listener's relays are the data path's (path set); TCP and TLS
// listeners' are pion's own sockets, read by pion.
type relayGenerator struct {
	ranged *turn.RelayAddressGeneratorPortRange
	path   *dataPath
	s      *Server
}

func newRelayGenerator(s *Server, path *dataPath) *relayGenerator {
	cfg := s.cfg
	return &relayGenerator{s: s, path: path, ranged: &turn.RelayAddressGeneratorPortRange{
		RelayAddress: net.ParseIP(cfg.ExternalIP),
		Address:      cfg.RelayIP,
		MinPort:      uint16(cfg.RelayPortMin), //nolint:gosec // validated 1..65535
		MaxPort:      uint16(cfg.RelayPortMax), //nolint:gosec // validated 1..65535
		MaxRetries:   relayRetries,
	}}
}

func (g *relayGenerator) Validate() error { return g.ranged.Validate() }

func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := g.s
	if p := conf.RequestedPort; p != 0 && (p < s.cfg.RelayPortMin || p > s.cfg.RelayPortMax) {
		return nil, nil, errPortOutOfRange
	}
	// GetRandomEvenPort probes with an empty UserID and closes at once:
	// no quota, no allocation.
	counted := conf.UserID != ""
	if counted && !s.quotas.take(conf.UserID) {
		s.stats.refusedQuota.Add(1)
		return nil, nil, errQuota
	}
	var conn net.PacketConn
	var addr net.Addr
	var err error
	if g.path != nil {
		conn, addr, err = g.path.newRelay(conf.Network, conf.RequestedPort)
	} else {
		conn, addr, err = g.ranged.AllocatePacketConn(conf)
	}
	if err != nil {
		if counted {
			s.quotas.release(conf.UserID)
		}
		return nil, nil, err
	}
	rc := &relayConn{PacketConn: conn, s: s, user: conf.UserID, counted: counted}
	if !s.trackRelay(rc) {
		_ = rc.Close()
		return nil, nil, errClosing
	}
	return rc, addr, nil
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// relayConn is a relay's socket: it counts what it carries and, when pion
// closes it with its allocation, gives the quota back.
type relayConn struct {
	net.PacketConn
	s       *Server
	user    string
	counted bool
	closed  atomic.Bool
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.s.stats.fromPeersPackets.Add(1)
		c.s.stats.fromPeersBytes.Add(uint64(n)) //nolint:gosec // n >= 0
	}
	return n, addr, err
}

// WriteTo drops a datagram to the server itself (peerPolicy.isLoop): a
// permission is for an address, and a Send indication names any port of
// it. Dropped as a firewall would, without an error pion would log.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ua.IP); ok && c.s.policy.isLoop(netip.AddrPortFrom(ip, uint16(ua.Port))) { //nolint:gosec // a port
			c.s.stats.droppedToSelf.Add(1)
			return len(p), nil
		}
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.s.stats.toPeersPackets.Add(1)
		c.s.stats.toPeersBytes.Add(uint64(n)) //nolint:gosec // n >= 0
	}
	return n, err
}

// Close is called by pion when the allocation goes and by Server.Close
// for any pion left; the second is a no-op, so pion's Manager.Close, which
// stops at the first error, closes the rest.
func (c *relayConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := c.PacketConn.Close()
	if c.counted {
		c.s.quotas.release(c.user)
	}
	c.s.untrackRelay(c)
	return err
}

// addrPortOf is a net.Addr's address and port, unmapped; zero for other
// kinds of address.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return unmapAddrPort(a.AddrPort())
	case *net.TCPAddr:
		return unmapAddrPort(a.AddrPort())
	}
	return netip.AddrPort{}
}
