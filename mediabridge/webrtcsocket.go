package mediabridge

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/internal/rawudp"
	"go.uber.org/zap"
)

// consentTimeout forgets a browser address that sent nothing this long
// (RFC 7675 §5.1: consent expires after 30 s without a response).
const consentTimeout = 30 * time.Second

// clockTick is the resolution of the coarse clock the poll loop stamps
// addresses with and the core latch reads, so the packet path never calls
// time.Now.
const clockTick = time.Second

// webrtcSocket is the one UDP socket (media.webrtc_port) that carries every
// browser's ICE, DTLS and SRTP, and the ICE-TCP connections (icetcp.go)
// whose packets take the same path under synthetic addresses. The poll
// loop reads it; handlePacket demultiplexes by first byte (RFC 7983) and by
// source address, whichever transport the packet came on.
type webrtcSocket struct {
	log *zap.Logger
	udp *rawudp.Socket
	tcp *tcpServer // nil when ICE-TCP is off

	// mu guards byUfrag, each endpoint's learned list and the writes of
	// addrs. The packet path reads addrs without it.
	mu      sync.Mutex
	byUfrag map[string]*webEndpoint // by our ICE ufrag, for STUN checks
	addrs   addrTable               // browser addresses that passed a check

	clock   atomic.Int64  // coarse seconds since start: consent freshness, the core latch's NAT window
	unknown atomic.Uint64 // packets from no session's address, or not demultiplexable

	done chan struct{}
	wg   sync.WaitGroup
}

// newWebRTCSocket serves udp for up to sessions sessions at once (the
// core port pairs): the address table is sized for them.
func newWebRTCSocket(udp *rawudp.Socket, tcp *tcpServer, sessions int, log *zap.Logger) *webrtcSocket {
	s := &webrtcSocket{log: log, udp: udp, tcp: tcp, byUfrag: map[string]*webEndpoint{}, addrs: newAddrTable(sessions), done: make(chan struct{})}
	s.wg.Add(1)
	go s.keepClock()
	return s
}

// close stops the clock and closes the socket; the poll loop must have
// let go of it.
func (s *webrtcSocket) close() error {
	close(s.done)
	s.wg.Wait()
	return s.udp.Close()
}

// handleDatagram is handlePacket for an IPv6 (dual-stack) UDP socket. A
// source in the ICE-TCP prefix is spoofed (RFC 6666 discards it on the
// way) and must not reach an ICE-TCP browser's session.
func (s *webrtcSocket) handleDatagram(pkt []byte, from netip.AddrPort, sc *loopScratch) {
	if isTCPAddr(from) {
		s.unknown.Add(1)
		return
	}
	s.handlePacket(pkt, from, sc)
}

// handlePacket demultiplexes one packet by its first byte (RFC 7983 §7)
// and its source address (IPv4-mapped addresses already unmapped, or an
// ICE-TCP connection's synthetic one).
func (s *webrtcSocket) handlePacket(pkt []byte, from netip.AddrPort, sc *loopScratch) {
	if len(pkt) == 0 {
		return
	}
	switch b := pkt[0]; {
	case b >= 128 && b <= 191: // RTP/RTCP (RFC 7983 §7)
		e := s.addrs.lookup(from)
		if e == nil {
			s.unknown.Add(1)
			return
		}
		e.lastSeen.Store(s.clock.Load())
		e.ep.receiveMedia(pkt, sc)
	case b <= 3: // STUN
		s.handleSTUN(pkt, from)
	case b >= 20 && b <= 63: // DTLS
		e := s.addrs.lookup(from)
		if e == nil || !e.ep.dtls.Load().deliver(pkt) {
			s.unknown.Add(1)
		}
	default:
		s.unknown.Add(1)
	}
}

// keepClock advances the coarse clock and forgets silent addresses.
func (s *webrtcSocket) keepClock() {
	defer s.wg.Done()
	tick := time.NewTicker(clockTick)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
			now := s.clock.Add(1)
			if now%5 == 0 {
				s.forgetSilent(now - int64(consentTimeout/clockTick))
			}
		}
	}
}

// forgetSilent forgets the addresses silent since before (consent
// expired). It looks for them without the lock and takes it only to
// remove what it found, so the poll loop's learn never waits on a scan.
func (s *webrtcSocket) forgetSilent(before int64) {
	var stale []*addrEntry
	s.addrs.each(func(e *addrEntry) {
		if e.lastSeen.Load() < before {
			stale = append(stale, e)
		}
	})
	if len(stale) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range stale {
		if e.live && e.lastSeen.Load() < before {
			s.forget(e)
		}
	}
}

// learn maps a browser address that passed an ICE check to its session
// and tells whether it did. Only the address's first check takes the
// lock, and adding it costs the same whatever the table holds. A session
// at maxLearnedAddrs forgets its least recently heard address other than
// the one its media goes to. An address another session heard from within
// the consent timeout stays that session's: a check with a spoofed source
// (its sender knows its own session's password) must not take a live
// browser's address from its call.
func (s *webrtcSocket) learn(addr netip.AddrPort, ep *webEndpoint) bool {
	now := s.clock.Load()
	if e := s.addrs.lookup(addr); e != nil && e.ep == ep {
		e.lastSeen.Store(now)
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUfrag[ep.localUfrag] != ep {
		return false // session closed meanwhile
	}
	if e := s.addrs.lookup(addr); e != nil {
		switch {
		case e.ep == ep:
			e.lastSeen.Store(now)
			return true
		case e.lastSeen.Load() >= now-int64(consentTimeout/clockTick):
			return false
		}
		s.forget(e)
	}
	if len(ep.learned) >= maxLearnedAddrs {
		s.forget(ep.oldestLearned())
	}
	e := &addrEntry{addr: addr, ep: ep}
	e.lastSeen.Store(now)
	s.addrs.insert(e)
	ep.learned = append(ep.learned, e)
	return true
}

// forget removes e from the table and from its session, which stops
// sending to it if its media went there. Under s.mu.
func (s *webrtcSocket) forget(e *addrEntry) {
	s.drop(e)
	ep := e.ep
	if i := slices.Index(ep.learned, e); i >= 0 {
		ep.learned = slices.Delete(ep.learned, i, i+1)
	}
	ep.forgetRemote(e.addr)
}

// register makes ep reachable by its ufrag.
func (s *webrtcSocket) register(ep *webEndpoint) {
	s.mu.Lock()
	s.byUfrag[ep.localUfrag] = ep
	s.mu.Unlock()
}

// unregister removes ep and every address that led to it: its own list,
// not a scan of the table.
func (s *webrtcSocket) unregister(ep *webEndpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUfrag[ep.localUfrag] == ep {
		delete(s.byUfrag, ep.localUfrag)
	}
	for _, e := range ep.learned {
		s.drop(e)
	}
	ep.learned = nil
}

// drop removes e from the table; an ICE-TCP connection lives only while
// its address is there, so it is closed. Under s.mu.
func (s *webrtcSocket) drop(e *addrEntry) {
	s.addrs.remove(e)
	if isTCPAddr(e.addr) {
		s.tcp.closeAddr(e.addr)
	}
}

// forgetAddr forgets addr as consent expiry does: its ICE-TCP connection
// ended. On the loop, after the connection's last packet, so no later
// check learns the address again.
func (s *webrtcSocket) forgetAddr(addr netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.addrs.lookup(addr); e != nil && e.live {
		s.forget(e)
	}
}

// writeTo sends one packet to a browser from the poll loop: a datagram, or
// a frame queued on its ICE-TCP connection.
func (s *webrtcSocket) writeTo(p []byte, to netip.AddrPort) error {
	if isTCPAddr(to) {
		return s.tcp.send(p, to)
	}
	return s.udp.WriteTo(p, to)
}

// writeToShared is writeTo for any other goroutine (a DTLS handshake).
func (s *webrtcSocket) writeToShared(p []byte, to netip.AddrPort) error {
	if isTCPAddr(to) {
		return s.tcp.send(p, to)
	}
	return s.udp.WriteToShared(p, to)
}

// rekey moves ep to new ICE credentials.
func (s *webrtcSocket) rekey(ep *webEndpoint, ufrag, pwd string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUfrag[ep.localUfrag] != ep {
		return // closed
	}
	delete(s.byUfrag, ep.localUfrag)
	ep.localUfrag, ep.localPwd = ufrag, pwd
	s.byUfrag[ufrag] = ep
}

// endpoint finds the session a check is for, with its password.
func (s *webrtcSocket) endpoint(ufrag string) (*webEndpoint, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.byUfrag[ufrag]
	if ep == nil {
		return nil, ""
	}
	return ep, ep.localPwd
}
