package turnserver

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// What pion calls: its AuthHandler, QuotaHandler, PermissionHandler and
// EventHandler. They run on pion's goroutines (a listener's read loop, a
// connection's, a relay's); none blocks on more than s.mu or a counter.

func (s *Server) authHandler(ra *turn.RequestAttributes) (string, []byte, bool) {
	user, key, err := s.auth.credentials(ra.Username, ra.Realm)
	if err != nil {
		s.refuseAuth(ra.SrcAddr, ra.Username, ra.Method.String(), err)
		return "", nil, false
	}
	return user, key, true
}

// onAuth hears pion's verdict on MESSAGE-INTEGRITY once authHandler gave
// a key; a false one is a wrong password.
func (s *Server) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if !verdict {
		s.refuseAuth(src, username, method, errors.New("message integrity check failed"))
	}
}

func (s *Server) refuseAuth(src net.Addr, username, method string, err error) {
	s.stats.refusedAuth.Add(1)
	if s.warns.allow(warnKey{kind: warnAuth, client: addrPortOf(src).Addr()}, s.lim.now()) {
		s.log.Warn("turn credentials refused", zap.Stringer("remote_addr", src),
			zap.String("user", username), zap.String("method", method), zap.Error(err))
	}
}

func (s *Server) quotaHandler(user, _ string, src net.Addr) bool {
	if s.quotas.fits(user) {
		return true
	}
	s.stats.refusedQuota.Add(1)
	if s.warns.allow(warnKey{kind: warnQuota, client: addrPortOf(src).Addr()}, s.lim.now()) {
		ofUser, all := s.quotas.count(user)
		s.log.Warn("turn allocation quota reached", zap.Stringer("remote_addr", src), zap.String("user", user),
			zap.Int("allocations_of_user", ofUser), zap.Int("allocations", all))
	}
	return false
}

// permissionHandler is pion's for the listener at local, for
// CreatePermission (and for ChannelBind that screen let through).
func (s *Server) permissionHandler(local net.Addr) func(client net.Addr, peer net.IP) bool {
	return func(client net.Addr, peer net.IP) bool {
		ip, ok := netip.AddrFromSlice(peer)
		if !ok {
			return false
		}
		ip = ip.Unmap()
		class, ok := s.peerAllowed(clientKeyOf(client, local), ip)
		if !ok {
			s.refusePeer(client, ip, class, "CreatePermission")
		}
		return ok
	}
}

// peerAllowed says whether client may get a permission for ip: the policy
// lets relays reach it, and its allocation has room for one more peer.
func (s *Server) peerAllowed(client clientKey, ip netip.Addr) (peerClass, bool) {
	class := s.policy.classify(ip)
	if !class.relayed() {
		return class, false
	}
	return class, s.permits.room(client, ip)
}

func (s *Server) refusePeer(client net.Addr, ip netip.Addr, class peerClass, method string) {
	reason := "peer policy"
	if class.relayed() {
		reason = "permission limit"
		s.stats.refusedPermits.Add(1)
	} else {
		s.stats.refusedPeer.Add(1)
	}
	k := warnKey{kind: warnPeer, client: addrPortOf(client).Addr(), peer: logRange(ip)}
	if s.warns.allow(k, s.lim.now()) {
		s.log.Warn("turn peer refused", zap.Stringer("remote_addr", client), zap.Stringer("peer", ip),
			zap.Stringer("peer_class", class), zap.String("method", method), zap.String("reason", reason))
	}
}

func (s *Server) onAllocationCreated(src, dst net.Addr, _, user, _ string, relay net.Addr, _ int) {
	key := keyOf(src, dst)
	s.mu.Lock()
	t := s.transportOf(src, dst)
	s.allocs++
	s.allocated[key] = allocation{transport: t}
	s.relayPort[addrPortOf(relay).Port()] = t // until the relay socket closes (relayConn.Close)
	if s.path != nil && t == TransportUDP {
		s.path.allocated(addrPortOf(relay).Port(), addrPortOf(src))
	}
	if c := s.conns[key]; c != nil && !c.closed && !c.allocated {
		// Bounded by the allocation's lifetime now; pion's readloop may
		// wait for the client as long as it likes.
		c.allocated = true
		s.waiting(c, -1)
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	s.mu.Unlock()
	s.stats.created[t].Add(1)
	s.stats.active[t].Add(1)
	s.log.Debug("turn allocation", zap.Stringer("remote_addr", src), zap.Stringer("transport", t),
		zap.String("user", user), zap.Stringer("relay_addr", relay))
}

func (s *Server) onAllocationDeleted(src, dst net.Addr, _, user, _ string) {
	key := keyOf(src, dst)
	s.mu.Lock()
	a, ok := s.allocated[key]
	if !ok {
		a.transport = s.transportOf(src, dst)
	}
	t := a.transport
	delete(s.allocated, key)
	s.stats.active[t].Add(-1)
	s.allocs--
	if c := s.conns[key]; c != nil && !c.closed && c.allocated {
		// Back to waiting for an allocation (RFC 8656 lets the client
		// make a new one on the same connection).
		c.allocated = false
		s.waiting(c, +1)
		_ = c.Conn.SetReadDeadline(s.lim.now().Add(s.lim.allocateTimeout))
	}
	s.drained.Broadcast()
	s.mu.Unlock()
	s.log.Debug("turn allocation deleted", zap.Stringer("remote_addr", src), zap.Stringer("transport", t),
		zap.String("user", user))
}

func (s *Server) onPermissionCreated(src, dst net.Addr, _, _, _ string, relay net.Addr, peer net.IP) {
	if ip, ok := netip.AddrFromSlice(peer); ok {
		s.permits.add(clientKeyOf(src, dst), ip.Unmap())
		if s.path != nil {
			s.path.permitted(addrPortOf(relay).Port(), addrPortOf(src), ip.Unmap(), true)
		}
	}
}

func (s *Server) onPermissionDeleted(src, dst net.Addr, _, _, _ string, relay net.Addr, peer net.IP) {
	if ip, ok := netip.AddrFromSlice(peer); ok {
		s.permits.remove(clientKeyOf(src, dst), ip.Unmap())
		if s.path != nil {
			s.path.permitted(addrPortOf(relay).Port(), addrPortOf(src), ip.Unmap(), false)
		}
	}
}

// onChannelCreated and onChannelDeleted count each allocation's channels
// (screenChannelBind bounds them) and keep the data path's (a relay not
// the data path's is ignored there).
func (s *Server) onChannelCreated(src, dst net.Addr, _, _, _ string, relay, peer net.Addr, number uint16) {
	s.channels.add(clientKeyOf(src, dst), number)
	if s.path != nil {
		s.path.channel(addrPortOf(relay).Port(), addrPortOf(src), addrPortOf(peer), number, true)
	}
}

func (s *Server) onChannelDeleted(src, dst net.Addr, _, _, _ string, relay, peer net.Addr, number uint16) {
	s.channels.remove(clientKeyOf(src, dst), number)
	if s.path != nil {
		s.path.channel(addrPortOf(relay).Port(), addrPortOf(src), addrPortOf(peer), number, false)
	}
}
