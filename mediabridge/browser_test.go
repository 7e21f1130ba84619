package mediabridge

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// browserOpusPT is the opus payload type of the fake browser, as Chrome's.
const browserOpusPT = 111

// testBrowser is a pion PeerConnection playing the browser (full ICE, on lo).
type testBrowser struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticRTP
	connected chan struct{}
	failed    chan struct{}    // ICE or DTLS failed
	received  chan *rtp.Packet // first packets from the gateway
	// tracks, when set before the first packet, takes the gateway's track
	// instead of a reader goroutine (benchmarks read it themselves).
	tracks chan *webrtc.TrackRemote
	wg     sync.WaitGroup
}

func newTestBrowser(t testing.TB, settings ...func(*webrtc.SettingEngine)) *testBrowser {
	t.Helper()
	return newTestBrowserWith(t, nil, settings...)
}

// newTestBrowserWith is newTestBrowser with interceptors (pion's RTCP
// sender and receiver reports); nil for none.
func newTestBrowserWith(t testing.TB, ir *interceptor.Registry, settings ...func(*webrtc.SettingEngine)) *testBrowser {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	for _, set := range settings {
		set(&se)
	}
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: browserOpusPT},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-15"}, PayloadType: 126},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatalf("register codec: %v", err)
		}
	}
	opts := []func(*webrtc.API){webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)}
	if ir != nil {
		if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
			t.Fatalf("interceptors: %v", err)
		}
		opts = append(opts, webrtc.WithInterceptorRegistry(ir))
	}
	api := webrtc.NewAPI(opts...)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("browser peer connection: %v", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "browser")
	if err != nil {
		t.Fatalf("browser track: %v", err)
	}
	b := &testBrowser{pc: pc, track: track, connected: make(chan struct{}), failed: make(chan struct{}), received: make(chan *rtp.Packet, 16)}
	var once, failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(b.connected) })
		case webrtc.PeerConnectionStateFailed:
			failOnce.Do(func() { close(b.failed) })
		}
	})
	var mu sync.Mutex
	closed := false
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		if ir != nil {
			// The receiver-report interceptor sees the gateway's SRs (for
			// LSR) only as they are read.
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				for {
					if _, _, err := recv.ReadRTCP(); err != nil {
						return
					}
				}
			}()
		}
		if b.tracks != nil {
			b.tracks <- tr
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				select {
				case b.received <- p:
				default:
				}
			}
		}()
	})
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		if err := pc.Close(); err != nil {
			t.Errorf("browser close: %v", err)
		}
		b.wg.Wait()
	})
	return b
}

// gathered sets desc as local description and returns the complete SDP.
func (b *testBrowser) gathered(t testing.TB, desc webrtc.SessionDescription) []byte {
	t.Helper()
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(desc); err != nil {
		t.Fatalf("browser set local: %v", err)
	}
	waitChan(t, "browser gathering", done)
	return []byte(b.pc.LocalDescription().SDP)
}

func (b *testBrowser) offer(t testing.TB) []byte {
	t.Helper()
	if _, err := b.pc.AddTrack(b.track); err != nil {
		t.Fatalf("browser add track: %v", err)
	}
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatalf("browser offer: %v", err)
	}
	return b.gathered(t, o)
}

func (b *testBrowser) answer(t testing.TB, offer []byte) []byte {
	t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		t.Fatalf("browser set remote offer: %v", err)
	}
	if _, err := b.pc.AddTrack(b.track); err != nil {
		t.Fatalf("browser add track: %v", err)
	}
	a, err := b.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatalf("browser answer: %v", err)
	}
	return b.gathered(t, a)
}

func (b *testBrowser) setAnswer(t testing.TB, answer []byte) {
	t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatalf("browser set remote answer: %v", err)
	}
}

func waitChan[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// testCore is a plain UDP socket playing the core's RTP endpoint.
type testCore struct {
	conn     *net.UDPConn
	received chan rtp.Packet
	wg       sync.WaitGroup
}

func newTestCore(t testing.TB) *testCore {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("core socket: %v", err)
	}
	c := &testCore{conn: conn, received: make(chan rtp.Packet, 16)}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			p.Payload = append([]byte(nil), p.Payload...)
			select {
			case c.received <- p:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		c.wg.Wait()
	})
	return c
}

func (c *testCore) addr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// repeat calls send every 20 ms (a packet time) until stop is closed; the
// returned func stops and waits for it.
func repeat(send func(seq uint16)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			send(seq)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func rtpBytes(t *testing.T, pt uint8, seq uint16, payload []byte) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 0x11223344}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Errorf("marshal rtp: %v", err)
	}
	return b
}

func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }
