package mediabridge

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The packet-path benchmarks of issue 3. Each forwards 172-byte G.711
// packets (12-byte header, 160 bytes of 20 ms PCMU). The floor benchmarks
// are what one forwarded packet cannot avoid: a UDP send and receive and
// one SRTP operation. Figures and commands are in docs/MEDIA-BENCH.md.

// benchDeadline turns a datagram lost on a loaded machine into a failed run
// within seconds instead of a hang; it is pushed forward every
// deadlineEvery packets so its cost stays off the per-packet figure.
const (
	benchDeadline = 5 * time.Second
	deadlineEvery = 4096
)

type deadliner interface{ SetReadDeadline(time.Time) error }

// keepDeadline pushes d's read deadline forward every deadlineEvery calls.
type keepDeadline struct {
	d deadliner
	n int
}

func (k *keepDeadline) tick() {
	if k.n%deadlineEvery == 0 {
		_ = k.d.SetReadDeadline(time.Now().Add(benchDeadline))
	}
	k.n++
}

// benchProfile is what Chrome and the gateway negotiate: both list
// SRTP_AEAD_AES_128_GCM first (pion/dtls picks the first common profile).
const benchProfile = srtp.ProtectionProfileAeadAes128Gcm

func benchContext(tb testing.TB) *srtp.Context {
	tb.Helper()
	keyLen, _ := benchProfile.KeyLen()
	saltLen, _ := benchProfile.SaltLen()
	key := make([]byte, keyLen)
	salt := make([]byte, saltLen)
	for i := range key {
		key[i] = byte(i)
	}
	c, err := srtp.CreateContext(key, salt, benchProfile, srtp.SRTPReplayProtection(srtpReplayWindow))
	if err != nil {
		tb.Fatalf("srtp context: %v", err)
	}
	return c
}

func setSeq(pkt []byte, seq uint16) {
	pkt[2] = byte(seq >> 8)
	pkt[3] = byte(seq)
}

func BenchmarkFloorUDP(b *testing.B) {
	a := listenLoopback(b)
	c := listenLoopback(b)
	dst := addrOf(c)
	pkt := g711Packet(0)
	rbuf := make([]byte, maxPacket)
	dl := keepDeadline{d: c}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		dl.tick()
		if _, err := a.WriteToUDPAddrPort(pkt, dst); err != nil {
			b.Fatalf("write: %v", err)
		}
		if _, _, err := c.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatalf("read: %v", err)
		}
	}
	cpu.report(b)
}

func BenchmarkFloorSRTPEncrypt(b *testing.B) {
	enc := benchContext(b)
	pkt := g711Packet(0)
	dst := make([]byte, maxPacket)
	var h rtp.Header
	seq := uint16(0)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		seq++
		setSeq(pkt, seq)
		if _, err := enc.EncryptRTP(dst[:0], pkt, &h); err != nil {
			b.Fatalf("encrypt: %v", err)
		}
	}
	cpu.report(b)
}

// encryptedPool holds packets encrypted ahead, so the decrypt benchmark
// times decryption alone and replay protection stays on (each packet is
// new to the decrypting context).
type encryptedPool struct {
	enc  *srtp.Context
	seq  uint16
	pkts [][]byte
	next int
}

func newEncryptedPool(tb testing.TB, enc *srtp.Context, size int) *encryptedPool {
	p := &encryptedPool{enc: enc, pkts: make([][]byte, size)}
	for i := range p.pkts {
		p.pkts[i] = make([]byte, 0, maxPacket)
	}
	p.refill(tb)
	return p
}

func (p *encryptedPool) refill(tb testing.TB) {
	plain := g711Packet(111) // the browser's opus type, mapped by testPTMap
	var h rtp.Header
	for i := range p.pkts {
		p.seq++
		setSeq(plain, p.seq)
		out, err := p.enc.EncryptRTP(p.pkts[i][:0], plain, &h)
		if err != nil {
			tb.Fatalf("encrypt: %v", err)
		}
		p.pkts[i] = out
	}
	p.next = 0
}

// take returns the next encrypted packet, refilling off the clock.
func (p *encryptedPool) take(b *testing.B) []byte {
	if p.next == len(p.pkts) {
		b.StopTimer()
		p.refill(b)
		b.StartTimer()
	}
	pkt := p.pkts[p.next]
	p.next++
	return pkt
}

func BenchmarkFloorSRTPDecrypt(b *testing.B) {
	pool := newEncryptedPool(b, benchContext(b), 4096)
	dec := benchContext(b)
	dst := make([]byte, maxPacket)
	var h rtp.Header
	b.SetBytes(int64(len(g711Packet(0))))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := dec.DecryptRTP(dst[:0], pool.take(b), &h); err != nil {
			b.Fatalf("decrypt: %v", err)
		}
	}
	cpu.report(b)
}

// benchCall is a connected session with a pion browser and a bare core
// socket that the session sends to (browser offered, PCMU both sides).
type benchCall struct {
	session *Session
	browser *testBrowser
	core    *coreSocket
	gwRTP   netip.AddrPort
}

type coreSocket struct {
	conn interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
		ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
		SetReadDeadline(time.Time) error
	}
	addr netip.AddrPort
}

func newBenchCall(b *testing.B, wantTrack bool) *benchCall {
	b.Helper()
	e := newTestEngine(b)
	c := listenLoopback(b)
	core := &coreSocket{conn: c, addr: addrOf(c)}
	browser := newTestBrowser(b)
	if wantTrack {
		browser.tracks = make(chan *webrtc.TrackRemote, 1)
	}
	s := newTestSession(b, e)
	if _, err := s.WebOffer(browser.offer(b)); err != nil {
		b.Fatalf("WebOffer: %v", err)
	}
	answer, err := s.CoreAnswer(coreSDP(core.addr, 96))
	if err != nil {
		b.Fatalf("CoreAnswer: %v", err)
	}
	browser.setAnswer(b, answer)
	waitChan(b, "browser connected", browser.connected)
	return &benchCall{
		session: s, browser: browser, core: core,
		gwRTP: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.ports.port)),
	}
}

// BenchmarkSRTPToRTP: the pion browser sends opus-typed RTP (172 bytes);
// the session decrypts, maps the payload type and writes to the core
// socket, which reads it. Includes the browser's pion send path.
func BenchmarkSRTPToRTP(b *testing.B) {
	call := newBenchCall(b, false)
	payload := make([]byte, 160)
	rbuf := make([]byte, maxPacket)
	seq := uint16(0)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: payload}
	dl := keepDeadline{d: call.core.conn}
	b.SetBytes(int64(rtpHeaderLen + len(payload)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		dl.tick()
		seq++
		pkt.SequenceNumber = seq
		pkt.Timestamp = uint32(seq) * 960
		if err := call.browser.track.WriteRTP(pkt); err != nil {
			b.Fatalf("browser write: %v", err)
		}
		if _, _, err := call.core.conn.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatalf("core read (seq %d): %v", seq, err)
		}
	}
	cpu.report(b)
	b.StopTimer()
	if st := call.session.Stats(); st.Dropped != 0 {
		b.Errorf("dropped %d", st.Dropped)
	}
}

// BenchmarkRTPToSRTP: the core socket sends RTP to the session's core
// port; the session maps, encrypts and sends to the browser, whose pion
// track reads (and decrypts) it. Includes the browser's pion receive path.
func BenchmarkRTPToSRTP(b *testing.B) {
	call := newBenchCall(b, true)
	pkt := g711Packet(96)
	// The browser's track exists once a first packet arrived.
	stop := repeat(func(seq uint16) {
		setSeq(pkt, seq)
		_, _ = call.core.conn.WriteToUDPAddrPort(pkt, call.gwRTP)
	})
	track := waitChan(b, "browser track", call.browser.tracks)
	stop()
	rbuf := make([]byte, maxPacket)
	// Drain what the warm-up left in flight.
	for {
		_ = track.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := track.Read(rbuf); err != nil {
			break
		}
	}
	seq := uint16(1000)
	droppedBefore := call.session.Stats().Dropped // warm-up packets before the keys
	dl := keepDeadline{d: track}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		dl.tick()
		seq++
		setSeq(pkt, seq)
		if _, err := call.core.conn.WriteToUDPAddrPort(pkt, call.gwRTP); err != nil {
			b.Fatalf("core write: %v", err)
		}
		if _, _, err := track.Read(rbuf); err != nil {
			b.Fatalf("browser read (seq %d): %v", seq, err)
		}
	}
	cpu.report(b)
	b.StopTimer()
	if st := call.session.Stats(); st.Dropped != droppedBefore {
		b.Errorf("dropped %d", st.Dropped-droppedBefore)
	}
}

// rawCall is a session whose SRTP keys the benchmark
// installs itself, with a plain UDP socket as the browser: the browser
// costs only its UDP send or receive, so the figure is the gateway's path.
type rawCall struct {
	session *Session
	browser *net.UDPConn
	core    *net.UDPConn
	gwRTP   netip.AddrPort
	gwWeb   netip.AddrPort
	toGW    *srtp.Context // the browser's outbound context
}

func newRawCall(b testing.TB) *rawCall {
	b.Helper()
	e := newTestEngine(b)
	s := newTestSession(b, e)
	browser := listenLoopback(b)
	core := listenLoopback(b)
	s.fwd.pts.Store(testPTMap())
	s.fwd.setCoreRemote(addrOf(core))
	// What a valid nominating ICE check does.
	e.sock.learn(addrOf(browser), s.ep)
	s.ep.setRemote(addrOf(browser), true)
	s.ep.useContexts(benchContext(b), benchContext(b))
	return &rawCall{
		session: s, browser: browser, core: core,
		gwRTP: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.ports.port)),
		gwWeb: e.sock.udp.LocalAddr(),
		toGW:  benchContext(b),
	}
}

// BenchmarkSRTPToRTPRaw: SRTP from a raw browser socket (encrypted ahead,
// off the clock) → poll loop → decrypt → PT map → core
// socket read.
func BenchmarkSRTPToRTPRaw(b *testing.B) {
	call := newRawCall(b)
	pool := newEncryptedPool(b, call.toGW, 4096)
	rbuf := make([]byte, maxPacket)
	dl := keepDeadline{d: call.core}
	b.SetBytes(int64(len(g711Packet(0))))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		dl.tick()
		if _, err := call.browser.WriteToUDPAddrPort(pool.take(b), call.gwWeb); err != nil {
			b.Fatalf("browser write: %v", err)
		}
		if _, _, err := call.core.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatalf("core read: %v (stats %+v, unknown %d)", err, call.session.Stats(), call.session.engine.sock.unknown.Load())
		}
	}
	cpu.report(b)
	b.StopTimer()
	if st := call.session.Stats(); st.Dropped != 0 {
		b.Errorf("dropped %d", st.Dropped)
	}
}

// BenchmarkRTPToSRTPRaw: RTP from the core socket → poll loop
// → PT map → encrypt → shared socket → raw browser socket read.
func BenchmarkRTPToSRTPRaw(b *testing.B) {
	call := newRawCall(b)
	pkt := g711Packet(96)
	rbuf := make([]byte, maxPacket)
	seq := uint16(0)
	dl := keepDeadline{d: call.browser}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		dl.tick()
		seq++
		setSeq(pkt, seq)
		if _, err := call.core.WriteToUDPAddrPort(pkt, call.gwRTP); err != nil {
			b.Fatalf("core write: %v", err)
		}
		if _, _, err := call.browser.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatalf("browser read: %v (stats %+v)", err, call.session.Stats())
		}
	}
	cpu.report(b)
	b.StopTimer()
	if st := call.session.Stats(); st.Dropped != 0 {
		b.Errorf("dropped %d", st.Dropped)
	}
}
