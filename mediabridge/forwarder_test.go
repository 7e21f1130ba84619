package mediabridge

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func listenLoopback(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// loopbackSocket is a gateway-side socket on 127.0.0.1.
func loopbackSocket(tb testing.TB) *udpSocket {
	tb.Helper()
	s, err := listenUDP(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { _ = s.close() })
	return s
}

func testPTMap() *ptMap {
	m := newPTMap()
	m.link(111, 96)  // opus
	m.link(126, 101) // telephone-event
	return m
}

// g711Packet is a 20 ms PCMU-sized RTP packet (12 + 160 bytes).
func g711Packet(pt uint8) []byte {
	b := make([]byte, rtpHeaderLen+160)
	b[0] = 0x80
	b[1] = pt
	b[11] = 1
	return b
}

// testSender is a webSender with test keys that sends to a loopback
// socket standing in for the browser.
func testSender(t testing.TB, f *forwarder) *webSender {
	t.Helper()
	browser := listenLoopback(t)
	ep := &webEndpoint{sock: &webrtcSocket{udp: loopbackSocket(t)}, fwd: f, ssrc: 7, remoteSeen: make(chan struct{})}
	ep.setRemote(addrOf(browser), true)
	ep.useContexts(benchContext(t), benchContext(t))
	return f.webOut.Load()
}

func TestForwarderDrops(t *testing.T) {
	tests := []struct {
		name          string
		pkt           []byte
		ready         bool
		wantDropped   uint64
		wantEarly     uint64
		wantForwarded uint64
	}{
		{name: "forwarded", pkt: g711Packet(96), ready: true, wantForwarded: 1},
		{name: "before dtls", pkt: g711Packet(96), ready: false, wantDropped: 1, wantEarly: 1},
		{name: "short", pkt: []byte{0x80, 96, 0}, ready: true, wantDropped: 1},
		{name: "rtp version 1", pkt: append([]byte{0x40}, g711Packet(96)[1:]...), ready: true, wantDropped: 1},
		{name: "unmapped pt", pkt: g711Packet(18), ready: true, wantDropped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &forwarder{}
			f.pts.Store(testPTMap())
			sc := newLoopScratch(loopbackSocket(t))
			if tt.ready {
				sc.web.init(testSender(t, f).ep.sock.udp)
			}
			f.coreToWeb(tt.pkt, netip.MustParseAddrPort("127.0.0.1:5004"), sc)
			sc.web.flush()
			st := f.stats()
			if st.Dropped != tt.wantDropped || st.DroppedEarly != tt.wantEarly || st.CoreToWeb.Packets != tt.wantForwarded {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// BenchmarkWebToCore: PT rewrite and UDP write to the core on loopback,
// plus the core's read of it.
func BenchmarkWebToCore(b *testing.B) {
	core := listenLoopback(b)
	f := &forwarder{core: loopbackSocket(b)}
	f.pts.Store(testPTMap())
	f.setCoreRemote(addrOf(core))
	pkt := g711Packet(111)
	rbuf := make([]byte, maxPacket)
	sc := &loopScratch{}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pkt[1] = 111
		f.webToCore(pkt, len(pkt), sc)
		if _, _, err := core.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatalf("core read: %v", err)
		}
	}
	b.StopTimer()
	if f.stats().Dropped != 0 {
		b.Fatalf("dropped %d", f.stats().Dropped)
	}
}

// TestSequencerKeepsOneStream: when the source behind the browser's stream
// changes, sequence numbers and timestamps go on from where they were.
func TestSequencerKeepsOneStream(t *testing.T) {
	pkt := func(ssrc uint32, seq uint16, ts uint32) []byte {
		p := make([]byte, rtpHeaderLen)
		p[0] = 0x80
		p[2], p[3] = byte(seq>>8), byte(seq)
		p[4], p[5], p[6], p[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		p[8], p[9], p[10], p[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
		return p
	}
	read := func(p []byte) (uint16, uint32) {
		return uint16(p[2])<<8 | uint16(p[3]), uint32(p[4])<<24 | uint32(p[5])<<16 | uint32(p[6])<<8 | uint32(p[7])
	}
	var q sequencer
	tests := []struct {
		ssrc    uint32
		seq     uint16
		ts      uint32
		wantSeq uint16
		wantTS  uint32
	}{
		{1, 65534, 1000, 65534, 1000},
		{1, 65535, 1160, 65535, 1160},
		{2, 7, 90000, 0, 1320},  // a new source continues: wraps to 0
		{2, 8, 90160, 1, 1480},  // and keeps its offset
		{1, 100, 5000, 2, 1640}, // the first source back is a new source again
		{1, 99, 4840, 1, 1480},  // reordered: passed on, the mark stays
		{1, 101, 5160, 3, 1800},
		{1, 9000, 60000, 4, 1960}, // the same SSRC jumping far: restarted
	}
	for i, tt := range tests {
		p := pkt(tt.ssrc, tt.seq, tt.ts)
		q.rewrite(p, 8000)
		if seq, ts := read(p); seq != tt.wantSeq || ts != tt.wantTS {
			t.Errorf("packet %d: seq %d ts %d, want %d %d", i, seq, ts, tt.wantSeq, tt.wantTS)
		}
	}
}

// TestLatchPrefersSDPAddress: the source the core's SDP names wins over
// another (a second fork's early media, a party that moved away); sources
// the SDP does not name are followed (NAT in front of the core).
func TestLatchPrefersSDPAddress(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:4000")
	b := netip.MustParseAddrPort("192.0.2.2:4000")
	c := netip.MustParseAddrPort("192.0.2.3:4000")
	f := &forwarder{}
	f.setCoreRemote(b)
	steps := []struct {
		src    netip.AddrPort
		accept bool
	}{
		{a, true},  // nothing latched yet
		{b, true},  // the SDP's address takes over
		{a, false}, // and keeps it
		{b, true},
	}
	for i, st := range steps {
		if got := f.accept(st.src); got != st.accept {
			t.Errorf("step %d: accept(%v) = %v", i, st.src, got)
		}
	}
	f.setCoreRemote(netip.MustParseAddrPort("198.51.100.1:5000")) // moved; behind a NAT: never seen
	if f.accept(b) {
		t.Errorf("the source moved away from took the latch at once")
	}
	if !f.accept(c) || f.coreDest() != c {
		t.Errorf("the first unnamed source must be latched; dest %v", f.coreDest())
	}
	if f.accept(a) || f.coreDest() != c {
		t.Errorf("a stranger took the latched media; dest %v", f.coreDest())
	}
	f.setCoreRemote(netip.MustParseAddrPort("198.51.100.1:5002"))
	held := 0
	for !f.accept(c) {
		held++
	}
	if held != leftHoldOff {
		t.Errorf("the old source was held off %d packets, want %d", held, leftHoldOff)
	}
}

// TestCoreDigitsReportedOnce: the core's RFC 4733 packets of one key press
// (updates, then the end packet three times) are one digit.
func TestCoreDigitsReportedOnce(t *testing.T) {
	var got []DTMFDigit
	f := &forwarder{onDigit: func(from Leg, form DTMFForm, d DTMFDigit) {
		if from == LegCore && form == FormRFC4733 {
			got = append(got, d)
		}
	}}
	pkt := func(seq uint16, dur uint16, end bool) []byte {
		p := make([]byte, rtpHeaderLen+4)
		p[0], p[1] = 0x80, 101
		p[2], p[3] = byte(seq>>8), byte(seq)
		p[4], p[5], p[6], p[7] = 0, 0, 0x10, 0 // one timestamp for the event
		p[12] = 5
		p[13] = 10
		if end {
			p[13] |= 0x80
		}
		p[14], p[15] = byte(dur>>8), byte(dur)
		return p
	}
	seq := uint16(1)
	for d := uint16(160); d <= 800; d += 160 {
		f.readDigit(&f.dtmfIn, LegCore, pkt(seq, d, false), 8000)
		seq++
	}
	for range 3 {
		f.readDigit(&f.dtmfIn, LegCore, pkt(seq, 960, true), 8000)
		seq++
	}
	if len(got) != 1 || got[0].Signal() != "5" || got[0].Duration != 120*time.Millisecond {
		t.Fatalf("digits %+v, want one 5 of 120 ms", got)
	}
	f.readDigit(&f.dtmfIn, LegCore, []byte{0x80, 101, 0, 1}, 8000) // too short: ignored
}
