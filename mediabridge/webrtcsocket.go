package mediabridge

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// consentTimeout forgets a browser address that sent nothing this long
// (RFC 7675 §5.1: consent expires after 30 s without a response).
const consentTimeout = 30 * time.Second

// clockTick is the resolution of the coarse clock the poll loop stamps
// addresses with, so the packet path never calls time.Now.
const clockTick = time.Second

// webrtcSocket is the one UDP socket (media.webrtc_port) that carries every
// browser's ICE, DTLS and SRTP. The poll loop reads it; handlePacket
// demultiplexes by first byte (RFC 7983) and by source address.
type webrtcSocket struct {
	log *zap.Logger
	udp *udpSocket

	mu      sync.Mutex                // guards byUfrag and writes of addrs
	byUfrag map[string]*webEndpoint   // by our ICE ufrag, for STUN checks
	addrs   atomic.Pointer[addrTable] // copy on write: read per packet without a lock

	clock   atomic.Int64  // coarse seconds since start, for consent freshness
	unknown atomic.Uint64 // packets from no session's address, or not demultiplexable

	done chan struct{}
	wg   sync.WaitGroup
}

type addrTable map[netip.AddrPort]*addrEntry

// addrEntry is a browser address that passed an ICE check.
type addrEntry struct {
	ep       *webEndpoint
	lastSeen atomic.Int64 // webrtcSocket.clock at its last packet
}

func newWebRTCSocket(udp *udpSocket, log *zap.Logger) *webrtcSocket {
	s := &webrtcSocket{log: log, udp: udp, byUfrag: map[string]*webEndpoint{}, done: make(chan struct{})}
	s.addrs.Store(&addrTable{})
	s.wg.Add(1)
	go s.keepClock()
	return s
}

// close stops the clock and closes the socket; the poll loop must have
// let go of it.
func (s *webrtcSocket) close() error {
	close(s.done)
	s.wg.Wait()
	return s.udp.close()
}

// handlePacket demultiplexes one datagram by its first byte (RFC 7983 §7)
// and its source address (IPv4-mapped addresses already unmapped).
func (s *webrtcSocket) handlePacket(pkt []byte, from netip.AddrPort, sc *loopScratch) {
	if len(pkt) == 0 {
		return
	}
	switch b := pkt[0]; {
	case b >= 128 && b <= 191: // RTP/RTCP (RFC 7983 §7)
		e := (*s.addrs.Load())[from]
		if e == nil {
			s.unknown.Add(1)
			return
		}
		e.lastSeen.Store(s.clock.Load())
		e.ep.receiveMedia(pkt, sc)
	case b <= 3: // STUN
		s.handleSTUN(pkt, from)
	case b >= 20 && b <= 63: // DTLS
		e := (*s.addrs.Load())[from]
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

func (s *webrtcSocket) forgetSilent(before int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.addrs.Load()
	var stale []netip.AddrPort
	for a, e := range old {
		if e.lastSeen.Load() < before {
			stale = append(stale, a)
		}
	}
	if len(stale) == 0 {
		return
	}
	t := make(addrTable, len(old))
	for a, e := range old {
		t[a] = e
	}
	for _, a := range stale {
		t[a].ep.forgetRemote(a)
		delete(t, a)
	}
	s.addrs.Store(&t)
}

// learn maps a browser address that passed an ICE check to its session.
func (s *webrtcSocket) learn(addr netip.AddrPort, ep *webEndpoint) {
	if e := (*s.addrs.Load())[addr]; e != nil && e.ep == ep {
		e.lastSeen.Store(s.clock.Load())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byUfrag[ep.localUfrag]; !ok {
		return // session closed meanwhile
	}
	old := *s.addrs.Load()
	t := make(addrTable, len(old)+1)
	for a, e := range old {
		t[a] = e
	}
	e := &addrEntry{ep: ep}
	e.lastSeen.Store(s.clock.Load())
	t[addr] = e
	s.addrs.Store(&t)
}

// register makes ep reachable by its ufrag.
func (s *webrtcSocket) register(ep *webEndpoint) {
	s.mu.Lock()
	s.byUfrag[ep.localUfrag] = ep
	s.mu.Unlock()
}

// unregister removes ep and every address that led to it.
func (s *webrtcSocket) unregister(ep *webEndpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byUfrag, ep.localUfrag)
	old := *s.addrs.Load()
	t := make(addrTable, len(old))
	for a, e := range old {
		if e.ep != ep {
			t[a] = e
		}
	}
	s.addrs.Store(&t)
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
