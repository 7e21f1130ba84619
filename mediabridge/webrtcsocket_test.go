package mediabridge

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
)

func bindingRequest(t *testing.T, username, pwd string, useCandidate bool) []byte {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(username)}
	if useCandidate {
		setters = append(setters, ice.UseCandidate())
	}
	setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatalf("build stun: %v", err)
	}
	return m.Raw
}

// readSTUN returns the gateway's answer, or nil when none came in wait.
func readSTUN(t *testing.T, c *net.UDPConn, wait time.Duration) *stun.Message {
	t.Helper()
	buf := make([]byte, maxPacket)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return m
}

func TestICELiteChecks(t *testing.T) {
	e := newTestEngine(t)
	s := newTestSession(t, e)
	gw := net.UDPAddrFromAddrPort(e.sock.udp.LocalAddr())
	user := s.ep.localUfrag + ":browser"
	tests := []struct {
		name         string
		username     string
		pwd          string
		useCandidate bool
		wantAnswer   bool
		wantRemote   bool // the source becomes the browser's address
	}{
		{name: "wrong password is not answered", username: user, pwd: "guess-guess-guess-guess", wantAnswer: false},
		{name: "unknown ufrag is not answered", username: "nobody:browser", pwd: s.ep.localPwd, wantAnswer: false},
		{name: "valid check is answered before any answer sdp", username: user, pwd: s.ep.localPwd, wantAnswer: true, wantRemote: true},
		{name: "nominating check is answered", username: user, pwd: s.ep.localPwd, useCandidate: true, wantAnswer: true, wantRemote: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			browser, err := net.DialUDP("udp4", nil, gw)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer browser.Close()
			if _, err := browser.Write(bindingRequest(t, tt.username, tt.pwd, tt.useCandidate)); err != nil {
				t.Fatalf("write: %v", err)
			}
			wait := 5 * time.Second
			if !tt.wantAnswer {
				wait = 200 * time.Millisecond // proving an absence
			}
			res := readSTUN(t, browser, wait)
			if (res != nil) != tt.wantAnswer {
				t.Fatalf("answered = %v, want %v", res != nil, tt.wantAnswer)
			}
			if res == nil {
				return
			}
			if res.Type != stun.BindingSuccess || stun.NewShortTermIntegrity(s.ep.localPwd).Check(res) != nil || stun.Fingerprint.Check(res) != nil {
				t.Fatalf("answer %v not a signed binding success", res.Type)
			}
			var mapped stun.XORMappedAddress
			if err := mapped.GetFrom(res); err != nil {
				t.Fatalf("xor-mapped-address: %v", err)
			}
			local := browser.LocalAddr().(*net.UDPAddr).AddrPort()
			if mapped.Port != int(local.Port()) {
				t.Errorf("mapped port %d, want %d", mapped.Port, local.Port())
			}
			if got, ok := s.ep.remoteAddr(); tt.wantRemote && (!ok || got != local) {
				t.Errorf("browser address %v, want %v", got, local)
			}
			if tt.useCandidate && !s.ep.nominated.Load() {
				t.Errorf("USE-CANDIDATE did not nominate")
			}
		})
	}
}

func TestNominationWins(t *testing.T) {
	ep := &webEndpoint{remoteSeen: make(chan struct{})}
	a := netip.MustParseAddrPort("127.0.0.1:1001")
	b := netip.MustParseAddrPort("127.0.0.1:1002")
	c := netip.MustParseAddrPort("127.0.0.1:1003")
	steps := []struct {
		addr     netip.AddrPort
		nominate bool
		want     netip.AddrPort
	}{
		{addr: a, want: a},                 // first valid check stands in
		{addr: b, want: b},                 // a later one before nomination too
		{addr: c, nominate: true, want: c}, // nomination
		{addr: a, want: c},                 // an unnominated check does not move it
	}
	for i, st := range steps {
		ep.setRemote(st.addr, st.nominate)
		if got, _ := ep.remoteAddr(); got != st.want {
			t.Errorf("step %d: remote %v, want %v", i, got, st.want)
		}
	}
	ep.forgetRemote(c)
	if _, ok := ep.remoteAddr(); ok {
		t.Errorf("forgotten address still used")
	}
}

func TestConsentFreshness(t *testing.T) {
	call := newRawCall(t)
	sock := call.session.engine.sock
	addr := addrOf(call.browser)
	if sock.addrs.lookup(addr) == nil {
		t.Fatal("browser address not learned")
	}
	events := make(chan Event, 4)
	call.session.ep.onEvent = func(ev Event) { events <- ev }
	// Nothing heard since clock 0: a sweep at 30 s forgets it.
	sock.forgetSilent(int64(consentTimeout / clockTick))
	if sock.addrs.lookup(addr) != nil {
		t.Errorf("silent address kept")
	}
	if _, ok := call.session.ep.remoteAddr(); ok {
		t.Errorf("session still sends to a silent address")
	}
	select {
	case ev := <-events:
		if ev.Kind != EventConsentLost {
			t.Errorf("event %s, want consent_lost", ev.Kind)
		}
	default:
		t.Error("the call was not told its browser is gone")
	}
}

// TestSRTPPath runs the raw path both ways: replayed and unauthenticated
// SRTP is dropped, SRTCP is counted, packets before the keys are dropped.
func TestSRTPPath(t *testing.T) {
	call := newRawCall(t)
	pool := newEncryptedPool(t, call.toGW, 2)
	first, second := pool.pkts[0], pool.pkts[1]
	tampered := append([]byte(nil), second...)
	tampered[len(tampered)-1] ^= 0xff
	srtcp := encryptedRTCP(t, call)
	rbuf := make([]byte, maxPacket)
	steps := []struct {
		name        string
		pkt         []byte
		wantAtCore  bool
		wantDropped uint64
		wantRTCP    uint64
	}{
		{name: "srtp is decrypted and forwarded", pkt: first, wantAtCore: true},
		{name: "a replay is dropped", pkt: first, wantDropped: 1},
		{name: "a forged tag is dropped", pkt: tampered, wantDropped: 2},
		{name: "srtcp is counted, not forwarded", pkt: srtcp, wantDropped: 2, wantRTCP: 1},
		{name: "the next packet still flows", pkt: second, wantAtCore: true, wantDropped: 2, wantRTCP: 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if _, err := call.browser.WriteToUDPAddrPort(st.pkt, call.gwWeb); err != nil {
				t.Fatal(err)
			}
			if st.wantAtCore {
				_ = call.core.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _, err := call.core.ReadFromUDPAddrPort(rbuf)
				if err != nil {
					t.Fatalf("core read: %v", err)
				}
				var p rtp.Packet
				if err := p.Unmarshal(rbuf[:n]); err != nil || p.PayloadType != 96 || len(p.Payload) != 160 {
					t.Fatalf("core got pt %d len %d (%v)", p.PayloadType, len(p.Payload), err)
				}
			}
			waitFor(t, "counters", func() bool {
				st2 := call.session.Stats()
				return st2.Dropped == st.wantDropped && st2.RTCPFromWeb == st.wantRTCP
			})
		})
	}
}

func TestSRTPBeforeKeysDropped(t *testing.T) {
	e := newTestEngine(t)
	s := newTestSession(t, e)
	browser := listenLoopback(t)
	e.sock.learn(addrOf(browser), s.ep)
	s.ep.setRemote(addrOf(browser), true)
	if _, err := browser.WriteToUDPAddrPort(g711Packet(111), e.sock.udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drop before keys", func() bool { return s.Stats().Dropped == 1 })
}

// TestOnlyVerifiedAddressesCarryMedia: the browser side takes packets only
// from addresses that passed an ICE check, and sends media only to the one
// the checks chose. From any other source SRTP (even SRTP that would
// decrypt), SRTCP and DTLS are dropped and counted as the socket's unknown
// packets, and the core's media does not go there; a valid check makes the
// source one of the session's, and the nominated address keeps the media.
func TestOnlyVerifiedAddressesCarryMedia(t *testing.T) {
	call := newRawCall(t)
	sock := call.session.engine.sock
	ep := call.session.ep
	stranger := listenLoopback(t)
	pool := newEncryptedPool(t, call.toGW, 2)
	srtcp := encryptedRTCP(t, call)
	rbuf := make([]byte, maxPacket)
	nothingAt := func(c *net.UDPConn, what string) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // proving an absence
		if n, from, err := c.ReadFromUDPAddrPort(rbuf); err == nil {
			t.Errorf("%s: %d bytes arrived from %v", what, n, from)
		}
	}
	arrivesAt := func(c *net.UDPConn, what string) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadFromUDPAddrPort(rbuf); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	for _, tt := range []struct {
		name string
		pkt  []byte
	}{
		{name: "srtp that would decrypt", pkt: pool.pkts[0]},
		{name: "srtcp", pkt: srtcp},
		{name: "dtls", pkt: []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{name: "a check with a wrong password", pkt: bindingRequest(t, ep.localUfrag+":b", "guess-guess-guess-guess", true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := sock.unknown.Load()
			if _, err := stranger.WriteToUDPAddrPort(tt.pkt, call.gwWeb); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "unknown counted", func() bool { return sock.unknown.Load() == before+1 })
			nothingAt(call.core, "core")
			nothingAt(stranger, "stranger")
			if st := call.session.Stats(); st.WebToCore.Packets != 0 || st.Dropped != 0 || st.RTCPFromWeb != 0 {
				t.Errorf("the session saw the packet: %+v", st)
			}
		})
	}

	t.Run("core media goes to the checked address only", func(t *testing.T) {
		if _, err := call.core.WriteToUDPAddrPort(g711Packet(96), call.gwRTP); err != nil {
			t.Fatal(err)
		}
		arrivesAt(call.browser, "browser")
		nothingAt(stranger, "stranger")
	})

	t.Run("a valid check makes the source the session's", func(t *testing.T) {
		if _, err := stranger.WriteToUDPAddrPort(bindingRequest(t, ep.localUfrag+":b", ep.localPwd, false), call.gwWeb); err != nil {
			t.Fatal(err)
		}
		if res := readSTUN(t, stranger, 5*time.Second); res == nil || res.Type != stun.BindingSuccess {
			t.Fatal("the check was not answered")
		}
		if _, err := stranger.WriteToUDPAddrPort(pool.pkts[1], call.gwWeb); err != nil {
			t.Fatal(err)
		}
		arrivesAt(call.core, "core")
		// Not nominated: the media stays with the nominated address.
		if _, err := call.core.WriteToUDPAddrPort(g711Packet(96), call.gwRTP); err != nil {
			t.Fatal(err)
		}
		arrivesAt(call.browser, "browser")
		nothingAt(stranger, "stranger")
	})
}

// TestCheckCannotTakeLiveAddress: a valid check for one session from an
// address another session hears from (a spoofed source; its sender knows
// its own session's password) is not answered and moves nothing.
func TestCheckCannotTakeLiveAddress(t *testing.T) {
	victim := newRawCall(t)
	e := victim.session.engine
	other := newTestSession(t, e)
	addr := addrOf(victim.browser)
	before := e.sock.unknown.Load()
	if _, err := victim.browser.WriteToUDPAddrPort(bindingRequest(t, other.ep.localUfrag+":b", other.ep.localPwd, true), victim.gwWeb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "check refused", func() bool { return e.sock.unknown.Load() == before+1 })
	if res := readSTUN(t, victim.browser, 200*time.Millisecond); res != nil {
		t.Error("the check was answered")
	}
	if en := e.sock.addrs.lookup(addr); en == nil || en.ep != victim.session.ep {
		t.Error("the address left its session")
	}
	if _, ok := other.ep.remoteAddr(); ok {
		t.Error("the other session sends media to the address")
	}
}

// encryptedRTCP is a receiver report as the browser's SRTCP.
func encryptedRTCP(t *testing.T, call *rawCall) []byte {
	t.Helper()
	plain, err := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := call.toGW.EncryptRTCP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
