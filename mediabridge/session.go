package mediabridge

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// maxPacket is the receive buffer per socket: one MTU-sized RTP packet.
const maxPacket = 1500

// negotiation is where a session's offer/answer exchange stands.
type negotiation int

const (
	negotiationUnknown negotiation = iota
	negotiationIdle
	negotiationWebOffered  // browser offered, core offer sent, waiting for CoreAnswer
	negotiationCoreOffered // core offered, browser offer sent, waiting for WebAnswer
	negotiationDone
)

func (n negotiation) String() string {
	switch n {
	case negotiationIdle:
		return "idle"
	case negotiationWebOffered:
		return "web_offered"
	case negotiationCoreOffered:
		return "core_offered"
	case negotiationDone:
		return "done"
	default:
		return "unknown"
	}
}

// Session is the media of one call: a PeerConnection toward the browser and
// an RTP/RTCP port pair toward the core. Its methods are called from the
// call's goroutine; Close may race with the packet goroutines.
type Session struct {
	engine  *Engine
	log     *zap.Logger
	id      uint64
	created time.Time
	pc      *webrtc.PeerConnection
	ports   *portPair
	fwd     *forwarder
	track   *coreTrack

	state       negotiation
	localUfrag  string  // our ICE ufrag when we offered to the browser
	offerCodecs []codec // what our outgoing offer carried, with its payload types
	webAnswer   []byte  // kept so a repeated CoreAnswer returns the same answer

	mu     sync.Mutex // guards closed against wg.Add from pion's OnTrack
	closed bool
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	isClosed  atomic.Bool
}

// NewSession allocates the core port pair and starts reading it at once, so
// early core packets are counted (and dropped) from the start.
func (e *Engine) NewSession(log *zap.Logger) (*Session, error) {
	pair, err := e.ports.allocate()
	if err != nil {
		return nil, fmt.Errorf("new media session: %w", err)
	}
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		_ = e.ports.release(pair)
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	id := e.nextID.Add(1)
	fwd := &forwarder{core: pair.rtp}
	s := &Session{
		engine:  e,
		log:     log,
		id:      uint64(time.Now().Unix())<<16 | id&0xffff,
		created: time.Now(),
		pc:      pc,
		ports:   pair,
		fwd:     fwd,
		track:   &coreTrack{fwd: fwd, id: "audio", streamID: fmt.Sprintf("imsgate-%d", id)},
		state:   negotiationIdle,
	}
	pc.OnConnectionStateChange(s.onConnectionState)
	pc.OnTrack(s.onTrack)
	s.wg.Add(2)
	go s.readCoreRTP()
	go s.readCoreRTCP()
	return s, nil
}

func (s *Session) onConnectionState(state webrtc.PeerConnectionState) {
	// Connected means ICE and DTLS are up: SRTP keys exist.
	s.fwd.webReady.Store(state == webrtc.PeerConnectionStateConnected)
	switch state {
	case webrtc.PeerConnectionStateConnected, webrtc.PeerConnectionStateFailed:
		// The operator's view of a call's media: ICE+DTLS up, or given up.
		s.log.Info("webrtc "+state.String(), zap.Duration("dur", time.Since(s.created)))
	default:
		s.log.Debug("webrtc state", zap.String("reason", state.String()))
	}
}

// onTrack runs on a pion goroutine; the read loop it starts is owned by
// the session and waited for in Close.
func (s *Session) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if track.Kind() != webrtc.RTPCodecTypeAudio {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go s.readWeb(track)
}

// readWeb forwards browser RTP to the core until the PeerConnection closes.
func (s *Session) readWeb(track *webrtc.TrackRemote) {
	defer s.wg.Done()
	s.log.Debug("browser track", zap.Uint32("ssrc", uint32(track.SSRC())), zap.Uint8("pt", uint8(track.PayloadType())))
	buf := make([]byte, maxPacket)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		s.fwd.webToCore(buf, n)
	}
}

// readCoreRTP is the one read loop of the core RTP socket; it ends when
// Close closes the socket.
func (s *Session) readCoreRTP() {
	defer s.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, src, err := s.ports.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			s.logReadEnd("rtp", err)
			return
		}
		s.fwd.coreToWeb(buf, n, src)
	}
}

// readCoreRTCP reads and counts the core's RTCP; it is not relayed yet.
func (s *Session) readCoreRTCP() {
	defer s.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		if _, _, err := s.ports.rtcp.ReadFromUDPAddrPort(buf); err != nil {
			s.logReadEnd("rtcp", err)
			return
		}
		s.fwd.rtcpFromCore.Add(1)
	}
}

func (s *Session) logReadEnd(socket string, err error) {
	if !errors.Is(err, net.ErrClosed) {
		s.log.Warn("core socket read ended", zap.String("flow", socket), zap.Error(err))
	}
}

// Stats is a snapshot of the packet counters.
func (s *Session) Stats() Stats { return s.fwd.stats() }

// Close is idempotent: it closes the PeerConnection and the core sockets,
// waits for every packet goroutine, and frees the port pair.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.isClosed.Store(true)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.fwd.webReady.Store(false)
		if s.localUfrag != "" {
			s.engine.early.release(s.localUfrag, false)
		}
		errPC := s.pc.Close()
		if errPC != nil {
			errPC = fmt.Errorf("close peer connection: %w", errPC)
		}
		errPorts := s.engine.ports.release(s.ports)
		s.wg.Wait()
		st := s.Stats()
		s.log.Debug("media session closed",
			zap.Uint64("web_to_core_packets", st.WebToCore.Packets),
			zap.Uint64("core_to_web_packets", st.CoreToWeb.Packets),
			zap.Uint64("dropped", st.Dropped),
			zap.Stringer("remote_addr", st.LatchedAddr))
		s.closeErr = errors.Join(errPC, errPorts)
	})
	return s.closeErr
}

func (s *Session) checkState(want negotiation) error {
	if s.isClosed.Load() {
		return errSessionClosed
	}
	if s.state != want {
		return fmt.Errorf("%w: %s, want %s", errWrongState, s.state, want)
	}
	return nil
}
