package mediabridge

import (
	"time"

	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

func TestDTLSFingerprintMismatch(t *testing.T) {
	e := newTestEngine(t)
	core := newTestCore(t)
	browser := newTestBrowser(t)
	s := newTestSession(t, e)
	events := recordEvents(s)
	offer := browser.offer(t)
	// Another certificate's fingerprint: the browser's must not verify.
	i := bytes.Index(offer, []byte("a=fingerprint:sha-256 "))
	if i < 0 {
		t.Fatalf("browser offer has no sha-256 fingerprint")
	}
	forged := bytes.Clone(offer)
	j := i + len("a=fingerprint:sha-256 ")
	copy(forged[j:], e.cert.fingerprint[:8])
	if _, err := s.WebOffer(forged); err != nil {
		t.Fatalf("WebOffer: %v", err)
	}
	answer, err := s.CoreAnswer(coreSDP(core.addr(), 96))
	if err != nil {
		t.Fatalf("CoreAnswer: %v", err)
	}
	browser.setAnswer(t, answer)
	waitChan(t, "gateway handshake end", s.ep.handshook)
	if s.ep.in.Load() != nil || s.fwd.webOut.Load() != nil {
		t.Errorf("srtp keys installed for an unverified certificate")
	}
	if ev := waitEvent(t, events); ev.Kind != EventFailed || ev.Err == nil {
		t.Errorf("event = %v, want failed with its error", ev)
	}
}

// recordEvents keeps what a session reports.
func recordEvents(s *Session) chan Event {
	ch := make(chan Event, 8)
	s.OnEvent(func(ev Event) { ch <- ev })
	return ch
}

func waitEvent(t *testing.T, ch chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("the session reported no event")
	}
	return Event{}
}

// coreSDP is the SDP of the fake core: opus on a dynamic type other than the
// browser's, PCMU, and telephone-event 101.
func coreSDP(addr netip.AddrPort, opusPT uint8) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=core 1 1 IN IP4 %[1]s\r\ns=core\r\nc=IN IP4 %[1]s\r\nt=0 0\r\n"+
		"m=audio %[2]d RTP/AVP %[3]d 0 101\r\na=rtpmap:%[3]d opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
		addr.Addr(), addr.Port(), opusPT))
}

func coreMediaPort(t *testing.T, coreSide []byte) int {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(coreSide)); err != nil {
		t.Fatalf("parse gateway core sdp: %v", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			return md.MediaName.Port.Value
		}
	}
	t.Fatalf("gateway core sdp has no audio:\n%s", coreSide)
	return 0
}

func TestMediaLoopback(t *testing.T) {
	tests := []struct {
		name        string
		coreOpusPT  uint8
		coreOffers  bool
		browserDTLS webrtc.DTLSRole                     // the role the browser answers with (0: pion's default, client)
		answerAddr  func(core *testCore) netip.AddrPort // address the core puts in its SDP
		wantLatched bool
	}{
		{
			name:       "browser offers, core answers from another address (latching)",
			coreOpusPT: 96,
			answerAddr: func(*testCore) netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:9") },
		},
		{
			name:       "core offers",
			coreOpusPT: 98,
			coreOffers: true,
			answerAddr: func(c *testCore) netip.AddrPort { return c.addr() },
		},
		{
			name:        "core offers, browser answers passive (gateway is the DTLS client)",
			coreOpusPT:  98,
			coreOffers:  true,
			browserDTLS: webrtc.DTLSRoleServer,
			answerAddr:  func(c *testCore) netip.AddrPort { return c.addr() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t)
			core := newTestCore(t)
			browser := newTestBrowser(t, func(se *webrtc.SettingEngine) {
				if tt.browserDTLS != 0 {
					_ = se.SetAnsweringDTLSRole(tt.browserDTLS)
				}
			})
			s := newTestSession(t, e)
			events := recordEvents(s)
			gatewayRTP := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.ports.port))
			gatewayRTCP := netip.AddrPortFrom(gatewayRTP.Addr(), gatewayRTP.Port()+1)

			earlySend := func() {
				t.Helper()
				if _, err := core.conn.WriteToUDPAddrPort(rtpBytes(t, tt.coreOpusPT, 1, []byte("early")), gatewayRTP); err != nil {
					t.Fatalf("core early send: %v", err)
				}
			}
			// A packet before any SDP names the core: a stranger's.
			earlySend()
			waitFor(t, "stranger drop", func() bool { return s.Stats().DroppedStranger > 0 })
			// Early media from the core once its SDP is in, before ICE/DTLS:
			// dropped and counted. As the first packet after the SDP it
			// latches its source, even one the SDP does not name (the
			// latching case: a NAT in front of the core).
			early := func() {
				t.Helper()
				earlySend()
				waitFor(t, "early drop", func() bool { return s.Stats().DroppedEarly > 0 })
			}

			if tt.coreOffers {
				webOffer, err := s.CoreOffer(coreSDP(tt.answerAddr(core), tt.coreOpusPT))
				if err != nil {
					t.Fatalf("CoreOffer: %v", err)
				}
				early()
				coreAnswer, err := s.WebAnswer(browser.answer(t, webOffer))
				if err != nil {
					t.Fatalf("WebAnswer: %v", err)
				}
				assertNoWebRTCLines(t, coreAnswer)
				if got := coreMediaPort(t, coreAnswer); got != s.ports.port {
					t.Errorf("core answer port %d, want %d", got, s.ports.port)
				}
			} else {
				coreOffer, err := s.WebOffer(browser.offer(t))
				if err != nil {
					t.Fatalf("WebOffer: %v", err)
				}
				assertNoWebRTCLines(t, coreOffer)
				webAnswer, err := s.CoreAnswer(coreSDP(tt.answerAddr(core), tt.coreOpusPT))
				if err != nil {
					t.Fatalf("CoreAnswer: %v", err)
				}
				early()
				again, err := s.CoreAnswer(coreSDP(tt.answerAddr(core), tt.coreOpusPT))
				if err != nil || !bytes.Equal(again, webAnswer) {
					t.Fatalf("repeated CoreAnswer changed the answer (err %v)", err)
				}
				browser.setAnswer(t, webAnswer)
			}
			waitChan(t, "browser connected", browser.connected)

			// core → browser: core PT becomes the browser's opus PT.
			stopCore := repeat(func(seq uint16) {
				_, _ = core.conn.WriteToUDPAddrPort(rtpBytes(t, tt.coreOpusPT, seq, []byte("from-core")), gatewayRTP)
			})
			got := waitChan(t, "packet at browser", browser.received)
			stopCore()
			if got.PayloadType != browserOpusPT || string(got.Payload) != "from-core" {
				t.Errorf("browser got pt %d payload %q, want pt %d from-core", got.PayloadType, got.Payload, browserOpusPT)
			}
			if st := s.Stats(); st.LatchedAddr != core.addr() {
				t.Errorf("latched %v, want %v", st.LatchedAddr, core.addr())
			}
			if ev := waitEvent(t, events); ev.Kind != EventConnected {
				t.Errorf("event = %v, want connected", ev)
			}

			// browser → core: the browser's opus PT becomes the core's. With
			// a dead SDP address this only arrives thanks to latching.
			stopBrowser := repeat(func(seq uint16) {
				_ = browser.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte("from-browser")})
			})
			gotCore := waitChan(t, "packet at core", core.received)
			stopBrowser()
			if gotCore.PayloadType != tt.coreOpusPT || string(gotCore.Payload) != "from-browser" {
				t.Errorf("core got pt %d payload %q, want pt %d from-browser", gotCore.PayloadType, gotCore.Payload, tt.coreOpusPT)
			}

			// SRTCP from the browser is decrypted and counted.
			if err := browser.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}}); err != nil {
				t.Fatalf("browser rtcp send: %v", err)
			}
			waitFor(t, "browser rtcp counted", func() bool { return s.Stats().RTCPFromWeb > 0 })

			// RTCP from the core is read and counted.
			if _, err := core.conn.WriteToUDPAddrPort([]byte{0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44}, gatewayRTCP); err != nil {
				t.Fatalf("core rtcp send: %v", err)
			}
			waitFor(t, "rtcp counted", func() bool { return s.Stats().RTCPFromCore > 0 })

			st := s.Stats()
			if st.WebToCore.Packets == 0 || st.CoreToWeb.Packets == 0 || st.DroppedEarly == 0 {
				t.Errorf("stats %+v", st)
			}
			// Close while both sides still send: the packet goroutines race it.
			stopCore = repeat(func(seq uint16) {
				_, _ = core.conn.WriteToUDPAddrPort(rtpBytes(t, tt.coreOpusPT, seq, []byte("late")), gatewayRTP)
			})
			stopBrowser = repeat(func(seq uint16) {
				_ = browser.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq}, Payload: []byte("late")})
			})
			err := s.Close()
			stopCore()
			stopBrowser()
			if err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestNewPeerConnectionTakesOver: in a running call the browser re-offers
// from a new PeerConnection (new ICE credentials and certificate, RFC 8842
// new association). The session answers alone, with new credentials of
// its own, and media reaches the new PeerConnection both ways.
func TestNewPeerConnectionTakesOver(t *testing.T) {
	e := newTestEngine(t)
	core := newTestCore(t)
	first := newTestBrowser(t)
	s := newTestSession(t, e)
	gatewayRTP := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.ports.port))
	if _, err := s.WebOffer(first.offer(t)); err != nil {
		t.Fatal(err)
	}
	answer, err := s.CoreAnswer(coreSDP(core.addr(), 96))
	if err != nil {
		t.Fatal(err)
	}
	first.setAnswer(t, answer)
	waitChan(t, "first browser connected", first.connected)

	second := newTestBrowser(t)
	step, err := s.Offer(LegWeb, second.offer(t))
	if err != nil || step.Answer == nil {
		t.Fatalf("re-offer from a new PeerConnection: answer %v, err %v (it must be answered alone)", step.Answer != nil, err)
	}
	if bytes.Contains(step.Answer, []byte("a=setup:actpass")) {
		t.Fatalf("an answer must pick a DTLS role:\n%s", step.Answer)
	}
	second.setAnswer(t, step.Answer)
	waitChan(t, "second browser connected", second.connected)

	stopCore := repeat(func(seq uint16) {
		_, _ = core.conn.WriteToUDPAddrPort(rtpBytes(t, 96, seq, []byte("to-second")), gatewayRTP)
	})
	got := waitChan(t, "packet at the new PeerConnection", second.received)
	stopCore()
	if string(got.Payload) != "to-second" {
		t.Errorf("new PeerConnection got %q", got.Payload)
	}
	stopBrowser := repeat(func(seq uint16) {
		_ = second.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte("from-second")})
	})
	defer stopBrowser()
	for {
		p := waitChan(t, "packet at core from the new PeerConnection", core.received)
		if string(p.Payload) == "from-second" {
			break
		}
	}
}
