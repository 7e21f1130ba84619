package mediabridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// newTCPTestEngine starts an engine with ICE-TCP on an ephemeral loopback
// port; limits, when set, replace the defaults.
func newTCPTestEngine(t testing.TB, limits *tcpLimits) *Engine {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	opts := []EngineOption{WithWebRTCTCPListener(ln)}
	if limits != nil {
		opts = append(opts, withTCPLimits(*limits))
	}
	return startTestEngine(t, testMediaConfig(), opts...)
}

// tcpCandidateLine is the candidate a browser must find in our SDP.
func tcpCandidateLine(e *Engine) string {
	return fmt.Sprintf("a=candidate:2 1 tcp %d 127.0.0.1 %d typ host tcptype passive",
		tcpHostCandidatePriority, e.WebRTCTCPAddr().(*net.TCPAddr).Port)
}

func TestTCPCandidateInSDP(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("ice-tcp %v", tcp), func(t *testing.T) {
			var e *Engine
			if tcp {
				e = newTCPTestEngine(t, nil)
			} else {
				e = newTestEngine(t)
			}
			s := newTestSession(t, e)
			offer, err := s.CoreOffer(coreSDP(netip.MustParseAddrPort("127.0.0.1:4000"), 96))
			if err != nil {
				t.Fatalf("CoreOffer: %v", err)
			}
			got := sdpLines(offer, "a=candidate")
			want := []string{fmt.Sprintf("a=candidate:1 1 udp %d 127.0.0.1 %d typ host", hostCandidatePriority, e.webRTCPort())}
			if tcp {
				want = append(want, tcpCandidateLine(e))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("candidates\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	if tcpHostCandidatePriority >= hostCandidatePriority {
		t.Errorf("tcp candidate priority %d not below udp's %d", tcpHostCandidatePriority, hostCandidatePriority)
	}
}

// TestTCPPortFromConfig: media.webrtc_tcp_port binds the ICE-TCP port
// (a port found free just before), and 0 leaves ICE-TCP off.
func TestTCPPortFromConfig(t *testing.T) {
	if e := newTestEngine(t); e.WebRTCTCPAddr() != nil || e.webRTCTCPPort() != 0 {
		t.Errorf("webrtc_tcp_port 0 bound %v", e.WebRTCTCPAddr())
	}
	probe, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	_ = probe.Close()
	cfg := testMediaConfig()
	cfg.WebRTCTCPPort = port
	e, err := NewEngine(cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("NewEngine with webrtc_tcp_port %d: %v", port, err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	}()
	if e.webRTCTCPPort() != port {
		t.Errorf("candidate port %d, want %d", e.webRTCTCPPort(), port)
	}
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("dial the ice-tcp port: %v", err)
	}
	_ = c.Close()
}

// TestICETCPBrowser: a pion browser that has only TCP (no UDP candidate
// at all) connects to the gateway's passive candidate, runs ICE and DTLS
// over RFC 4571 frames, and RTP flows both ways through the session; the
// session names TCP and the browser's end of the connection as its path.
func TestICETCPBrowser(t *testing.T) {
	for _, coreOffers := range []bool{false, true} {
		t.Run(fmt.Sprintf("core offers %v", coreOffers), func(t *testing.T) {
			e := newTCPTestEngine(t, nil)
			core := newTestCore(t)
			browser := newTestBrowser(t, func(se *webrtc.SettingEngine) {
				se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
			})
			browser.tracks = make(chan *webrtc.TrackRemote, 1)
			s := newTestSession(t, e)
			events := recordEvents(s)
			gatewayRTP := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.ports.port))

			var toBrowser []byte
			if coreOffers {
				webOffer, err := s.CoreOffer(coreSDP(core.addr(), 96))
				if err != nil {
					t.Fatalf("CoreOffer: %v", err)
				}
				toBrowser = webOffer
				if _, err := s.WebAnswer(browser.answer(t, webOffer)); err != nil {
					t.Fatalf("WebAnswer: %v", err)
				}
			} else {
				if _, err := s.WebOffer(browser.offer(t)); err != nil {
					t.Fatalf("WebOffer: %v", err)
				}
				answer, err := s.CoreAnswer(coreSDP(core.addr(), 96))
				if err != nil {
					t.Fatalf("CoreAnswer: %v", err)
				}
				toBrowser = answer
				browser.setAnswer(t, answer)
			}
			if !bytes.Contains(toBrowser, []byte(tcpCandidateLine(e)+"\r\n")) {
				t.Fatalf("no passive tcp candidate in\n%s", toBrowser)
			}
			waitChan(t, "browser connected over tcp", browser.connected)
			if ev := waitEvent(t, events); ev.Kind != EventConnected || ev.Transport != TransportTCP {
				t.Errorf("event %v over %v, want connected over tcp", ev.Kind, ev.Transport)
			}
			transport, remote := s.WebPath()
			if transport != TransportTCP || remote.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("WebPath = %v %v, want tcp from 127.0.0.1", transport, remote)
			}
			if st := s.Stats(); st.WebTransport != TransportTCP || st.WebAddr != remote {
				t.Errorf("stats path %v %v, want %v %v", st.WebTransport, st.WebAddr, TransportTCP, remote)
			}

			const packets = 100
			// core → browser: the browser's track appears with the first
			// packet; then every packet is counted at the browser.
			stop := repeat(func(seq uint16) {
				_, _ = core.conn.WriteToUDPAddrPort(rtpBytes(t, 96, seq, []byte("warm-up")), gatewayRTP)
			})
			track := waitChan(t, "browser track", browser.tracks)
			stop()
			drainTrack(track)
			atBrowser := make(chan int, 1)
			go func() { atBrowser <- countTrack(track, "from-core", packets) }()
			before := s.Stats()
			paced(packets, func(i int) {
				_, _ = core.conn.WriteToUDPAddrPort(rtpBytes(t, 96, uint16(1000+i), []byte("from-core")), gatewayRTP)
			})
			gotBrowser := waitChan(t, "packets at the browser", atBrowser)

			// browser → core, counted at the core.
			atCore := make(chan int, 1)
			go func() { atCore <- countCore(core, "from-browser", packets) }()
			paced(packets, func(i int) {
				seq := uint16(1 + i)
				if err := browser.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte("from-browser")}); err != nil {
					t.Errorf("browser write: %v", err)
				}
			})
			gotCore := waitChan(t, "packets at the core", atCore)
			st := s.Stats()
			t.Logf("core→browser %d/%d at the browser (%d forwarded), browser→core %d/%d at the core (%d forwarded)",
				gotBrowser, packets, st.CoreToWeb.Packets-before.CoreToWeb.Packets, gotCore, packets, st.WebToCore.Packets)
			// TCP loses nothing; the core's UDP is loopback.
			if gotBrowser != packets || gotCore != packets {
				t.Errorf("browser got %d, core got %d of %d each way", gotBrowser, gotCore, packets)
			}
			if e.tcp.dropped.Load() != 0 {
				t.Errorf("%d packets toward the browser dropped", e.tcp.dropped.Load())
			}
		})
	}
}

// paced calls send n times, 2 ms apart: a packet time, shortened.
func paced(n int, send func(i int)) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		send(i)
		<-tick.C
	}
}

// drainTrack reads what a track has queued until it is quiet.
func drainTrack(tr *webrtc.TrackRemote) {
	buf := make([]byte, maxPacket)
	for {
		_ = tr.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := tr.Read(buf); err != nil {
			_ = tr.SetReadDeadline(time.Time{})
			return
		}
	}
}

// countTrack counts packets with payload until want came or a second
// passed without one.
func countTrack(tr *webrtc.TrackRemote, payload string, want int) int {
	n := 0
	for n < want {
		_ = tr.SetReadDeadline(time.Now().Add(time.Second))
		p, _, err := tr.ReadRTP()
		if err != nil {
			break
		}
		if string(p.Payload) == payload {
			n++
		}
	}
	_ = tr.SetReadDeadline(time.Time{})
	return n
}

func countCore(c *testCore, payload string, want int) int {
	n := 0
	for n < want {
		select {
		case p := <-c.received:
			if string(p.Payload) == payload {
				n++
			}
		case <-time.After(time.Second):
			return n
		}
	}
	return n
}

// tcpPeer is a hand-written ICE-TCP client: a TCP connection from a chosen
// loopback address, RFC 4571 frames both ways.
type tcpPeer struct {
	conn net.Conn
	fr   frameReader
}

func dialTCPPeer(t *testing.T, e *Engine, from string) *tcpPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", e.WebRTCTCPAddr().String())
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	p := &tcpPeer{conn: c}
	p.fr.r = c
	return p
}

func (p *tcpPeer) local() netip.AddrPort { return p.conn.LocalAddr().(*net.TCPAddr).AddrPort() }

func (p *tcpPeer) send(t *testing.T, pkt []byte) {
	t.Helper()
	if _, err := p.conn.Write(frame(pkt)); err != nil {
		t.Fatalf("peer write: %v", err)
	}
}

// next reads a frame within wait: nil and the error otherwise.
func (p *tcpPeer) next(wait time.Duration) ([]byte, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(wait))
	pkt, err := p.fr.next()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(pkt), nil
}

// closedWithin tells whether the gateway closed the connection within
// wait (reading and dropping any frames before the end).
func (p *tcpPeer) closedWithin(wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		_, err := p.fr.next()
		switch {
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			return false
		default:
			return true // EOF, reset
		}
	}
}

// check sends a Binding request for s signed with its password and returns
// the gateway's answer, nil if none came.
func (p *tcpPeer) check(t *testing.T, s *Session, pwd string) *stun.Message {
	t.Helper()
	p.send(t, bindingRequest(t, s.ep.localUfrag+":peer", pwd, true))
	pkt, err := p.next(2 * time.Second)
	if err != nil {
		return nil
	}
	m := &stun.Message{Raw: pkt}
	if err := m.Decode(); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return m
}

// TestICETCPLimits: what a peer may hold on the ICE-TCP port. Connections
// not past an ICE check are capped per source IP and all connections in
// total, refused ones closed at once; a connection that sends no valid
// check in time, or a frame over the largest packet, is closed; one that
// passes a check stays, is answered on its own connection with its own
// address mapped, and becomes the session's path; its end, or its
// session's, forgets it, and its slot and its IP's place are free again.
func TestICETCPLimits(t *testing.T) {
	limits := tcpLimits{conns: 3, pendingPerIP: 2, pendingTotal: 3, checkTimeout: 300 * time.Millisecond, writeTimeout: time.Second}
	slow := limits
	slow.checkTimeout = time.Minute // nothing closes by timeout: any close is a refusal

	t.Run("pending connections per source IP", func(t *testing.T) {
		e := newTCPTestEngine(t, &slow)
		a1, a2 := dialTCPPeer(t, e, "127.0.0.1"), dialTCPPeer(t, e, "127.0.0.1")
		a3 := dialTCPPeer(t, e, "127.0.0.1")
		if !a3.closedWithin(2 * time.Second) {
			t.Errorf("a third pending connection from one IP was kept")
		}
		b1 := dialTCPPeer(t, e, "127.0.0.2")
		for _, p := range []*tcpPeer{a1, a2, b1} {
			if p.closedWithin(100 * time.Millisecond) {
				t.Errorf("connection from %v within the limits closed", p.local())
			}
		}
		if n := e.tcp.refused.Load(); n != 1 {
			t.Errorf("refused %d, want 1", n)
		}
	})

	t.Run("connections in total", func(t *testing.T) {
		e := newTCPTestEngine(t, &slow)
		kept := []*tcpPeer{dialTCPPeer(t, e, "127.0.0.1"), dialTCPPeer(t, e, "127.0.0.2"), dialTCPPeer(t, e, "127.0.0.3")}
		if !dialTCPPeer(t, e, "127.0.0.4").closedWithin(2 * time.Second) {
			t.Errorf("a connection over the total was kept")
		}
		for _, p := range kept {
			if p.closedWithin(100 * time.Millisecond) {
				t.Errorf("connection from %v within the limits closed", p.local())
			}
		}
	})

	t.Run("unchecked connections in total", func(t *testing.T) {
		few := slow
		few.conns, few.pendingTotal = 8, 2 // slots stay free for checked browsers
		e := newTCPTestEngine(t, &few)
		kept := []*tcpPeer{dialTCPPeer(t, e, "127.0.0.1"), dialTCPPeer(t, e, "127.0.0.2")}
		if !dialTCPPeer(t, e, "127.0.0.3").closedWithin(2 * time.Second) {
			t.Errorf("a third unchecked connection was kept with free slots reserved")
		}
		for _, p := range kept {
			if p.closedWithin(100 * time.Millisecond) {
				t.Errorf("connection from %v within the limits closed", p.local())
			}
		}
	})

	t.Run("no valid check in time", func(t *testing.T) {
		e := newTCPTestEngine(t, &limits)
		s := newTestSession(t, e)
		start := time.Now()
		p := dialTCPPeer(t, e, "127.0.0.1")
		p.send(t, []byte{0x80, 0x6f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) // RTP from nobody
		p.send(t, bindingRequest(t, s.ep.localUfrag+":peer", "guess-guess-guess-guess", true))
		if !p.closedWithin(5 * time.Second) {
			t.Fatal("a connection with no valid check was kept")
		}
		if d := time.Since(start); d < limits.checkTimeout {
			t.Errorf("closed after %v, before the check timeout", d)
		}
		waitFor(t, "its slot and place freed", func() bool { return tcpSlotsFree(e) == limits.conns })
	})

	t.Run("frame over the largest packet", func(t *testing.T) {
		e := newTCPTestEngine(t, &slow)
		p := dialTCPPeer(t, e, "127.0.0.1")
		if _, err := p.conn.Write([]byte{(maxFrame + 1) >> 8, (maxFrame + 1) & 0xff, 0x80}); err != nil {
			t.Fatal(err)
		}
		if !p.closedWithin(2 * time.Second) {
			t.Fatal("a frame over the largest packet did not close its connection")
		}
	})

	t.Run("a valid check keeps the connection", func(t *testing.T) {
		e := newTCPTestEngine(t, &limits)
		s := newTestSession(t, e)
		events := recordEvents(s)
		p := dialTCPPeer(t, e, "127.0.0.1")
		m := p.check(t, s, s.ep.localPwd)
		if m == nil || m.Type != stun.BindingSuccess {
			t.Fatalf("valid check answered with %v", m)
		}
		var mapped stun.XORMappedAddress
		if err := mapped.GetFrom(m); err != nil {
			t.Fatalf("answer without XOR-MAPPED-ADDRESS: %v", err)
		}
		if got := netip.AddrPortFrom(netip.MustParseAddr(mapped.IP.String()), uint16(mapped.Port)); got != p.local() {
			t.Errorf("mapped %v, want the peer's end %v", got, p.local())
		}
		if tr, remote := s.WebPath(); tr != TransportTCP || remote != p.local() {
			t.Errorf("WebPath = %v %v, want tcp %v", tr, remote, p.local())
		}
		if p.closedWithin(3 * limits.checkTimeout) {
			t.Fatal("a connection past its check was closed at the check timeout")
		}
		// Past the check it is no longer pending: two more from its IP fit.
		more := []*tcpPeer{dialTCPPeer(t, e, "127.0.0.1"), dialTCPPeer(t, e, "127.0.0.1")}
		for _, q := range more {
			if q.closedWithin(100 * time.Millisecond) {
				t.Errorf("a pending connection beside a checked one was refused")
			}
		}
		// Its end forgets its address, as consent expiry does.
		_ = p.conn.Close()
		waitFor(t, "the session forgets the closed connection", func() bool { return !s.WebAlive() })
		if ev := waitEvent(t, events); ev.Kind != EventConsentLost {
			t.Errorf("event %v, want consent lost", ev.Kind)
		}
		if tr, _ := s.WebPath(); tr != TransportUnknown {
			t.Errorf("WebPath after the close = %v", tr)
		}
	})

	t.Run("the session's close closes its connection", func(t *testing.T) {
		e := newTCPTestEngine(t, &limits)
		s, err := e.NewSession(zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		p := dialTCPPeer(t, e, "127.0.0.1")
		if m := p.check(t, s, s.ep.localPwd); m == nil {
			t.Fatal("valid check not answered")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if !p.closedWithin(2 * time.Second) {
			t.Fatal("a closed session's connection was kept")
		}
		waitFor(t, "its slot freed", func() bool { return tcpSlotsFree(e) == limits.conns })
	})

	t.Run("a browser that reads nothing", func(t *testing.T) {
		e := newTCPTestEngine(t, &limits)
		s := newTestSession(t, e)
		p := dialTCPPeer(t, e, "127.0.0.1")
		if m := p.check(t, s, s.ep.localPwd); m == nil {
			t.Fatal("valid check not answered")
		}
		addr, _ := s.ep.remoteAddr()
		// Send until the socket buffers are full and the writer gives up
		// at its timeout: no send blocks meanwhile, the queue drops.
		pkt := make([]byte, maxPacket)
		var slowest time.Duration
		deadline := time.Now().Add(10 * time.Second)
		for s.WebAlive() && time.Now().Before(deadline) {
			start := time.Now()
			_ = e.sock.writeToShared(pkt, addr)
			slowest = max(slowest, time.Since(start))
		}
		if s.WebAlive() {
			t.Fatal("a connection whose browser reads nothing was kept")
		}
		t.Logf("slowest send %v, %d dropped", slowest, e.tcp.dropped.Load())
		if slowest > limits.writeTimeout/2 || e.tcp.dropped.Load() == 0 {
			t.Errorf("slowest send %v, %d dropped: sends must drop, not wait", slowest, e.tcp.dropped.Load())
		}
		waitFor(t, "its slot freed", func() bool { return tcpSlotsFree(e) == limits.conns })
	})
}

func tcpSlotsFree(e *Engine) int {
	e.tcp.mu.Lock()
	defer e.tcp.mu.Unlock()
	return len(e.tcp.free)
}

// TestSpoofedTCPAddrOverUDP: a datagram whose source is in the ICE-TCP
// prefix never reaches the session of the connection that address names.
func TestSpoofedTCPAddrOverUDP(t *testing.T) {
	e := newTCPTestEngine(t, nil)
	s := newTestSession(t, e)
	p := dialTCPPeer(t, e, "127.0.0.1")
	if m := p.check(t, s, s.ep.localPwd); m == nil {
		t.Fatal("valid check not answered")
	}
	addr, _ := s.ep.remoteAddr()
	sc := newLoopScratch(e.sock.udp, e.tcp)
	before := e.sock.unknown.Load()
	e.sock.handleDatagram(bindingRequest(t, s.ep.localUfrag+":peer", s.ep.localPwd, true), addr, sc)
	if e.sock.unknown.Load() != before+1 {
		t.Error("a spoofed datagram was not counted as unknown")
	}
	if pkt, err := p.next(200 * time.Millisecond); err == nil {
		t.Errorf("a spoofed datagram's check was answered on the connection: %d bytes", len(pkt))
	} else if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
		t.Errorf("read: %v", err)
	}
}
