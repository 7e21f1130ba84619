package mediabridge

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxPacket is the receive buffer per socket: one MTU-sized RTP packet.
const maxPacket = 1500

// Session is the media of one call: the gateway's WebRTC endpoint toward
// the browser and an RTP/RTCP port pair toward the core. Its methods are
// called from the call's goroutine; Close may race with the packet paths.
type Session struct {
	engine  *Engine
	log     *zap.Logger
	id      uint64
	created time.Time
	ep      *webEndpoint
	ports   *portPair
	fwd     *forwarder

	// Offer/answer (negotiation.go): negotiated once the first exchange
	// is answered; pending is our offer on a leg waiting for its answer,
	// settled the last one answered (a 2xx may repeat a 18x's answer).
	negotiated bool
	pending    *pendingOffer
	settled    *pendingOffer
	pairs      []pair
	web, core  legState
	webRemote  webTransport // the browser's transport as it last described it
	// eventsToWeb relays the core's RFC 4733 as it came (dtmf.to_web:
	// passthrough) instead of only reporting its digits.
	eventsToWeb bool
	// eventsToCore relays the browser's RFC 4733 to the core (dtmf.to_core
	// other than info and inband).
	eventsToCore bool

	closeOnce sync.Once
	closeErr  error
	isClosed  atomic.Bool
	// quiet is set once Close took the session off the poll loop: no packet
	// handler runs for it any more.
	quiet atomic.Bool
}

// NewSession allocates the core port pair and puts it in the poll loop at
// once, so early core packets are counted (and dropped) from the start.
func (e *Engine) NewSession(log *zap.Logger) (*Session, error) {
	pair, err := e.ports.allocate()
	if err != nil {
		return nil, fmt.Errorf("new media session: %w", err)
	}
	id := e.nextID.Add(1)
	fwd := &forwarder{core: pair.rtp, clock: &e.sock.clock}
	fwd.qos.base, fwd.qos.rtcpSock, fwd.qos.interval = time.Now(), pair.rtcp, qosReportInterval
	s := &Session{
		engine:  e,
		log:     log,
		id:      uint64(time.Now().Unix())<<16 | id&0xffff,
		created: time.Now(),
		ports:   pair,
		fwd:     fwd,
		ep:      newWebEndpoint(e.sock, e.cert, fwd, log, fmt.Sprintf("imsgate-%d", id)),
	}
	s.ep.onSetup = e.onSetup
	fwd.qos.localSSRC, fwd.qos.cname = s.ep.ssrc, s.ep.cname
	s.web.origin.version, s.core.origin.version = s.id, s.id
	if err := e.loop.add(pair.rtp, s.coreRTP, false); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("new media session: %w", err)
	}
	if err := e.loop.add(pair.rtcp, s.coreRTCP, false); err != nil {
		e.loop.remove(pair.rtp)
		s.closeEarly()
		return nil, fmt.Errorf("new media session: %w", err)
	}
	return s, nil
}

// closeEarly undoes NewSession before the sockets reached the loop.
func (s *Session) closeEarly() {
	s.isClosed.Store(true)
	s.ep.close()
	_ = s.engine.ports.release(s.ports)
}

// coreRTP handles the core's RTP on the poll loop.
func (s *Session) coreRTP(pkt []byte, from netip.AddrPort, sc *loopScratch) {
	s.fwd.coreToWeb(pkt, from, sc)
	s.fwd.reportDue(sc)
}

// coreRTCP reads the core's RTCP on the poll loop (qos.go); it is not
// relayed.
func (s *Session) coreRTCP(pkt []byte, from netip.AddrPort, sc *loopScratch) {
	s.fwd.coreRTCP(pkt, from, sc)
}

// RelayEventsToWeb relays the core's RFC 4733 packets to the browser as
// they came; by default their digits are only reported (EventDTMF), for
// the call to send as INFO. Set before negotiation.
func (s *Session) RelayEventsToWeb(on bool) { s.eventsToWeb = on }

// WebAlive tells whether the browser has an address that passed ICE
// checks and has not gone silent (RFC 7675 consent).
func (s *Session) WebAlive() bool {
	_, ok := s.ep.remoteAddr()
	return ok
}

// Codec is the audio codec the legs agreed on, as name/clock ("PCMU/8000",
// "opus/48000"), or "" before an answer.
func (s *Session) Codec() string {
	if m := s.fwd.pts.Load(); m != nil {
		return m.codec
	}
	return ""
}

// audioCodec is the first audio codec of pairs, as Codec tells it.
func audioCodec(pairs []pair) string {
	for _, p := range pairs {
		if !p.web.isDTMF() && !p.web.none() {
			return p.web.name + "/" + strconv.FormatUint(uint64(p.web.clock), 10)
		}
	}
	return ""
}

// Stats is a snapshot of the packet counters.
func (s *Session) Stats() Stats {
	st := s.fwd.stats()
	st.RTCPFromWeb = s.ep.rtcpFromWeb.Load()
	st.WebTransport, st.WebAddr = s.ep.path()
	return st
}

// Close is idempotent: it stops the browser side (DTLS, its addresses on
// the shared socket), takes the core sockets out of the poll loop, closes
// them and frees the port pair.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.isClosed.Store(true)
		transport, _ := s.ep.path() // before close forgets it
		s.ep.close()
		s.engine.loop.remove(s.ports.rtp)
		s.engine.loop.remove(s.ports.rtcp)
		s.quiet.Store(true)
		errPorts := s.engine.ports.release(s.ports)
		st := s.Stats()
		s.log.Debug("media session closed",
			zap.Stringer("transport", transport),
			zap.Uint64("web_to_core_packets", st.WebToCore.Packets),
			zap.Uint64("core_to_web_packets", st.CoreToWeb.Packets),
			zap.Uint64("dropped", st.Dropped),
			zap.Uint64("dropped_stranger", st.DroppedStranger),
			zap.Stringer("remote_addr", st.LatchedAddr))
		s.closeErr = errPorts
	})
	return s.closeErr
}
