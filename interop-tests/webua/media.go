package webua

import (
	"context"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

const (
	packetInterval = 20 * time.Millisecond
	pcmuFrameBytes = 160 // 20 ms of 8 kHz G.711
	// probeMagic starts every payload we send; with our id and the send
	// time behind it, a packet coming back is known to be our own echo.
	probeMagic     = 0x57554131 // "WUA1"
	probeBytes     = 16
	pcmuSilence    = 0xFF
	readBufferSize = 1500
)

// MediaStats counts one call's RTP. RTT figures cover echoed packets only.
type MediaStats struct {
	Sent          uint64 // RTP packets written to the PeerConnection
	Received      uint64 // every RTP packet read from the remote track
	Echoed        uint64 // received packets that were our own, sent back
	FirstReceived time.Time
	FirstEchoed   time.Time
	RTTMin        time.Duration
	RTTAvg        time.Duration
	RTTMax        time.Duration
}

// media owns one call's PeerConnection, its sender goroutine and the read
// loops pion's OnTrack starts.
type media struct {
	log *zap.Logger
	api *webrtc.API
	id  uint32 // our probe id, to tell our echo from far-end media

	iceConnected  chan struct{}
	peerConnected chan struct{} // DTLS done: SRTP can flow
	stop          chan struct{}
	iceOnce       sync.Once
	peerOnce      sync.Once
	closeOnce     sync.Once
	onFailed      func()         // called once when ICE or DTLS fail; must not block
	observer      PacketObserver // optional; set before newPeer, read-only after

	mu            sync.Mutex
	pc            *webrtc.PeerConnection
	closed        bool
	remoteApplied bool
	wg            sync.WaitGroup

	// muted: the negotiated direction forbids sending (recvonly or
	// inactive for us), so no RTP leaves, as in a browser.
	muted                  atomic.Bool
	sent, received, echoed atomic.Uint64
	firstReceived          atomic.Int64 // UnixNano
	firstEcho              atomic.Int64 // UnixNano
	iceAt, dtlsAt          atomic.Int64 // UnixNano
	rttSum                 atomic.Int64
	rttMin, rttMax         atomic.Int64
}

func newMedia(log *zap.Logger, api *webrtc.API, onFailed func()) *media {
	return &media{
		log:           log,
		api:           api,
		id:            mrand.Uint32(),
		iceConnected:  make(chan struct{}),
		peerConnected: make(chan struct{}),
		stop:          make(chan struct{}),
		onFailed:      onFailed,
	}
}

// newPeer creates the PeerConnection and its PCMU track and starts the
// sender, which idles until DTLS is up.
func (m *media) newPeer() (*webrtc.PeerConnection, *webrtc.TrackLocalStaticRTP, error) {
	pc, err := m.api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("new peer connection: %w", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "webua")
	if err != nil {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("new pcmu track: %w", err)
	}
	failedOnce := sync.Once{}
	failed := func() { failedOnce.Do(m.onFailed) }
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		switch s {
		case webrtc.ICEConnectionStateConnected:
			m.iceAt.CompareAndSwap(0, time.Now().UnixNano())
			m.iceOnce.Do(func() { close(m.iceConnected) })
		case webrtc.ICEConnectionStateFailed:
			failed()
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			m.dtlsAt.CompareAndSwap(0, time.Now().UnixNano())
			m.peerOnce.Do(func() { close(m.peerConnected) })
		case webrtc.PeerConnectionStateFailed:
			failed()
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { m.readTrack(remote) })

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		_ = pc.Close()
		return nil, nil, errClosed
	}
	m.pc = pc
	m.wg.Add(1)
	go m.sendLoop(track)
	return pc, track, nil
}

// offer makes a non-trickle offer: like JsSIP, wait for ICE gathering to
// complete so every candidate is in the SDP.
func (m *media) offer(ctx context.Context) (string, error) {
	pc, track, err := m.newPeer()
	if err != nil {
		return "", err
	}
	if _, err := pc.AddTrack(track); err != nil {
		return "", fmt.Errorf("add track: %w", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("create offer: %w", err)
	}
	return m.setLocal(ctx, pc, offer)
}

// answer applies a remote offer and makes a non-trickle answer.
func (m *media) answer(ctx context.Context, offerSDP string) (string, error) {
	pc, track, err := m.newPeer()
	if err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("set remote offer: %w", err)
	}
	m.mu.Lock()
	m.remoteApplied = true
	m.mu.Unlock()
	if _, err := pc.AddTrack(track); err != nil {
		return "", fmt.Errorf("add track: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer: %w", err)
	}
	return m.setLocal(ctx, pc, answer)
}

func (m *media) setLocal(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("set local %s: %w", desc.Type, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gather candidates: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// applyAnswer sets the remote answer once; an answer in a 18x and the same
// one again in the 200 are applied only the first time.
func (m *media) applyAnswer(sdp string) error {
	m.mu.Lock()
	pc := m.pc
	if pc == nil || m.closed || m.remoteApplied {
		m.mu.Unlock()
		return nil
	}
	m.remoteApplied = true
	m.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("set remote answer: %w", err)
	}
	return nil
}

// reoffer makes a new offer in the running session (a re-INVITE or UPDATE).
func (m *media) reoffer(ctx context.Context) (string, error) {
	pc, err := m.peer()
	if err != nil {
		return "", err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("create offer: %w", err)
	}
	return m.setLocal(ctx, pc, offer)
}

// reanswer applies an offer within the running session and answers it.
func (m *media) reanswer(ctx context.Context, offerSDP string) (string, error) {
	pc, err := m.peer()
	if err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("set remote offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer: %w", err)
	}
	return m.setLocal(ctx, pc, answer)
}

// applyReanswer sets the answer to our re-offer.
func (m *media) applyReanswer(sdp string) error {
	pc, err := m.peer()
	if err != nil {
		return err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("set remote answer: %w", err)
	}
	return nil
}

// rollback drops a re-offer that was refused (RFC 3261 §14.1: the session
// stays as it was).
func (m *media) rollback() error {
	pc, err := m.peer()
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

func (m *media) peer() (*webrtc.PeerConnection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pc == nil || m.closed {
		return nil, errClosed
	}
	return m.pc, nil
}

// setSending applies a negotiated direction to our sender.
func (m *media) setSending(send bool) { m.muted.Store(!send) }

// sendLoop writes one PCMU packet every 20 ms once DTLS is up. The packet
// and its payload are reused: WriteRTP copies what it keeps.
func (m *media) sendLoop(track *webrtc.TrackLocalStaticRTP) {
	defer m.wg.Done()
	select {
	case <-m.peerConnected:
	case <-m.stop:
		return
	}
	payload := make([]byte, pcmuFrameBytes)
	for i := range payload {
		payload[i] = pcmuSilence
	}
	binary.BigEndian.PutUint32(payload[0:4], probeMagic)
	binary.BigEndian.PutUint32(payload[4:8], m.id)
	pkt := rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         true, // first packet of a talkspurt, RFC 3551 §4.1
			PayloadType:    ptPCMU,
			SequenceNumber: uint16(mrand.Uint32()),
			Timestamp:      mrand.Uint32(),
			SSRC:           mrand.Uint32(),
		},
		Payload: payload,
	}
	ticker := time.NewTicker(packetInterval)
	defer ticker.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-ticker.C:
			// The clock is read now, not at the tick: a late wake-up under
			// load must not count as round-trip time.
			now := time.Now()
			if m.muted.Load() {
				// Time runs on while we do not send (RFC 3550 §5.1).
				pkt.Timestamp += pcmuFrameBytes
				continue
			}
			binary.BigEndian.PutUint64(payload[8:16], uint64(now.UnixNano()))
			if err := track.WriteRTP(&pkt); err != nil {
				m.log.Debug("rtp write stopped", zap.Error(err))
				return
			}
			m.sent.Add(1)
			if m.observer != nil {
				m.observer.ProbeSent(now)
			}
			pkt.SequenceNumber++
			pkt.Timestamp += pcmuFrameBytes
			pkt.Marker = false
		}
	}
}

// readTrack runs on the goroutine pion starts for OnTrack; it ends when
// close makes the track unreadable.
func (m *media) readTrack(track *webrtc.TrackRemote) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	m.log.Debug("remote track", zap.Uint32("ssrc", uint32(track.SSRC())),
		zap.Uint8("pt", uint8(track.PayloadType())), zap.String("codec", track.Codec().MimeType))
	buf := make([]byte, readBufferSize)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		m.onPacket(buf[:n], time.Now())
	}
}

// onPacket counts one received RTP packet and, if it is our own probe
// coming back, its round trip. No allocation: it runs per packet.
func (m *media) onPacket(pkt []byte, now time.Time) {
	m.received.Add(1)
	m.firstReceived.CompareAndSwap(0, now.UnixNano())
	payload, ok := rtpPayload(pkt)
	if !ok || len(payload) < probeBytes {
		return
	}
	if binary.BigEndian.Uint32(payload[0:4]) != probeMagic || binary.BigEndian.Uint32(payload[4:8]) != m.id {
		return
	}
	sentAt := int64(binary.BigEndian.Uint64(payload[8:16]))
	rtt := now.UnixNano() - sentAt
	if rtt < 0 {
		return
	}
	m.echoed.Add(1)
	m.firstEcho.CompareAndSwap(0, now.UnixNano())
	if m.observer != nil {
		m.observer.ProbeEchoed(time.Unix(0, sentAt), now)
	}
	m.rttSum.Add(rtt)
	for {
		cur := m.rttMin.Load()
		if (cur != 0 && cur <= rtt) || m.rttMin.CompareAndSwap(cur, rtt) {
			break
		}
	}
	for {
		cur := m.rttMax.Load()
		if cur >= rtt || m.rttMax.CompareAndSwap(cur, rtt) {
			break
		}
	}
}

// rtpPayload finds the payload of an RTP packet (RFC 3550 §5.1) without
// allocating.
func rtpPayload(pkt []byte) ([]byte, bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return nil, false
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // padding: the last octet counts it
		pad := int(pkt[end-1])
		if pad == 0 || pad > end-12 {
			return nil, false
		}
		end -= pad
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // header extension, §5.3.1
		if off+4 > end {
			return nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:off+4]))
	}
	if off > end {
		return nil, false
	}
	return pkt[off:end], true
}

func (m *media) stats() MediaStats {
	s := MediaStats{
		Sent:     m.sent.Load(),
		Received: m.received.Load(),
		Echoed:   m.echoed.Load(),
		RTTMin:   time.Duration(m.rttMin.Load()),
		RTTMax:   time.Duration(m.rttMax.Load()),
	}
	s.FirstReceived = unixNanoTime(m.firstReceived.Load())
	s.FirstEchoed = unixNanoTime(m.firstEcho.Load())
	if s.Echoed > 0 {
		s.RTTAvg = time.Duration(m.rttSum.Load() / int64(s.Echoed))
	}
	return s
}

// close stops the sender, closes the PeerConnection (which ends the read
// loops) and waits for all of them. Idempotent; must not run in a pion callback.
func (m *media) close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		pc := m.pc
		m.mu.Unlock()
		close(m.stop)
		if pc != nil {
			if err := pc.GracefulClose(); err != nil {
				m.log.Debug("close peer connection", zap.Error(err))
			}
		}
		m.wg.Wait()
	})
}
