package mediabridge

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/rawudp"
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
func loopbackSocket(tb testing.TB) *rawudp.Socket {
	tb.Helper()
	s, err := rawudp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
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
	core := netip.MustParseAddrPort("127.0.0.1:5004")
	tests := []struct {
		name          string
		pkt           []byte
		from          netip.AddrPort // the core's SDP address if unset
		ready         bool
		wantDropped   uint64
		wantEarly     uint64
		wantStranger  uint64
		wantForwarded uint64
	}{
		{name: "forwarded", pkt: g711Packet(96), ready: true, wantForwarded: 1},
		{name: "before dtls", pkt: g711Packet(96), ready: false, wantDropped: 1, wantEarly: 1},
		{name: "short", pkt: []byte{0x80, 96, 0}, ready: true, wantDropped: 1},
		{name: "rtp version 1", pkt: append([]byte{0x40}, g711Packet(96)[1:]...), ready: true, wantDropped: 1},
		{name: "unmapped pt", pkt: g711Packet(18), ready: true, wantDropped: 1},
		{name: "stranger", pkt: g711Packet(96), from: netip.MustParseAddrPort("192.0.2.66:5004"), ready: true, wantDropped: 1, wantStranger: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &forwarder{}
			f.pts.Store(testPTMap())
			f.setCoreRemote(core)
			f.accept(core) // the core latched: no NAT chance left
			sc := newLoopScratch(loopbackSocket(t), nil)
			if tt.ready {
				sc.web.init(testSender(t, f).ep.sock.udp, nil)
			}
			from := tt.from
			if !from.IsValid() {
				from = core
			}
			f.coreToWeb(tt.pkt, from, sc)
			sc.web.flush()
			st := f.stats()
			if st.Dropped != tt.wantDropped || st.DroppedEarly != tt.wantEarly || st.DroppedStranger != tt.wantStranger || st.CoreToWeb.Packets != tt.wantForwarded {
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
	pkt := bareRTP
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

// TestCoreLatch: which core sources the latch takes (coreLatch). Each
// step may set the SDP address (setCoreRemote), then move the clock on,
// then hand a packet from src to accept; every packet refused is counted
// as a stranger's.
func TestCoreLatch(t *testing.T) {
	var (
		sdpA   = netip.MustParseAddrPort("192.0.2.1:4000")
		sdpB   = netip.MustParseAddrPort("192.0.2.2:4000")
		nat    = netip.MustParseAddrPort("198.51.100.7:31000") // the core behind a NAT
		nat2   = netip.MustParseAddrPort("198.51.100.7:31002")
		bleed  = netip.MustParseAddrPort("203.0.113.9:5004") // an RTP bleed prober
		none   netip.AddrPort
		window = int64(natLatchWindow / clockTick)
	)
	type step struct {
		sdp      netip.AddrPort // set first when valid
		wait     int64          // clock ticks that pass next
		src      netip.AddrPort // then a packet from src, when valid
		accept   bool
		wantDest netip.AddrPort // coreDest after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "nothing named yet: every source is a stranger", steps: []step{
			{src: bleed, wantDest: none},
			{src: sdpA, wantDest: none},
		}},
		{name: "the sdp address is latched", steps: []step{
			{sdp: sdpA, wantDest: sdpA},
			{src: sdpA, accept: true, wantDest: sdpA},
			{src: bleed, wantDest: sdpA},
			{wait: 100, src: sdpA, accept: true, wantDest: sdpA},
		}},
		{name: "the sdp address is taken after the window too", steps: []step{
			{sdp: sdpA, wait: window + 5, src: sdpA, accept: true, wantDest: sdpA},
		}},
		{name: "nat: the first packet within the window latches its source", steps: []step{
			{sdp: sdpA, wait: 1, src: nat, accept: true, wantDest: nat},
			{wait: 100, src: nat, accept: true, wantDest: nat},
			{src: bleed, wantDest: nat},
			{src: nat2, wantDest: nat},
		}},
		{name: "nat: the window's last tick still counts", steps: []step{
			{sdp: sdpA, wait: window, src: nat, accept: true, wantDest: nat},
		}},
		{name: "nat: after the window a source not named is a stranger", steps: []step{
			{sdp: sdpA, wait: window + 1, src: nat, wantDest: sdpA},
			{src: bleed, wantDest: sdpA},
			{src: sdpA, accept: true, wantDest: sdpA},
		}},
		{name: "nat: only the first packet; the prober after it is refused", steps: []step{
			{sdp: sdpA, src: nat, accept: true, wantDest: nat},
			{src: bleed, wantDest: nat},
		}},
		{name: "nat: a prober's first packet wins the chance, the sdp address still takes over", steps: []step{
			{sdp: sdpA, src: bleed, accept: true, wantDest: bleed},
			{src: sdpA, accept: true, wantDest: sdpA},
			{src: bleed, wantDest: sdpA},
		}},
		{name: "the sdp address first spends the chance", steps: []step{
			{sdp: sdpA, src: sdpA, accept: true, wantDest: sdpA},
			{src: nat, wantDest: sdpA},
		}},
		{name: "a later answer with nothing latched opens the chance again", steps: []step{
			{sdp: sdpA, wait: window + 1, src: nat, wantDest: sdpA},     // the 183: no media came
			{sdp: sdpA, wait: 1, src: nat, accept: true, wantDest: nat}, // the 200
		}},
		{name: "a later answer of the same address keeps the latch", steps: []step{
			{sdp: sdpA, src: nat, accept: true, wantDest: nat},
			{sdp: sdpA, wait: 10, src: bleed, wantDest: nat},
			{src: nat, accept: true, wantDest: nat},
		}},
		{name: "fork: the other fork's answer wins, the first fork is held off", steps: []step{
			{sdp: sdpA, src: sdpA, accept: true, wantDest: sdpA}, // fork A's early media
			{sdp: sdpB, src: sdpA, wantDest: sdpB},               // fork B answers; A still sends
			{src: sdpB, accept: true, wantDest: sdpB},
			{src: sdpA, wantDest: sdpB},
		}},
		{name: "sdp wins over a nat source latched before it", steps: []step{
			{sdp: sdpA, src: nat, accept: true, wantDest: nat},
			{src: sdpA, accept: true, wantDest: sdpA},
			{src: nat, wantDest: sdpA},
		}},
		{name: "media moved back to the source it left", steps: []step{
			{sdp: sdpA, src: sdpA, accept: true, wantDest: sdpA},
			{sdp: sdpB, src: sdpB, accept: true, wantDest: sdpB},
			{sdp: sdpA, src: sdpA, accept: true, wantDest: sdpA}, // the sdp address is not held off
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := new(atomic.Int64)
			clock.Store(1000)
			f := &forwarder{clock: clock}
			var refused uint64
			for i, st := range tt.steps {
				if st.sdp.IsValid() {
					f.setCoreRemote(st.sdp)
				}
				clock.Add(st.wait)
				if st.src.IsValid() {
					if got := f.accept(st.src); got != st.accept {
						t.Errorf("step %d: accept(%v) = %v, want %v", i, st.src, got, st.accept)
					}
					if !st.accept {
						refused++
					}
				}
				if got := f.coreDest(); got != st.wantDest {
					t.Errorf("step %d: dest %v, want %v", i, got, st.wantDest)
				}
			}
			if got := f.stats().DroppedStranger; got != refused {
				t.Errorf("DroppedStranger = %d, want %d", got, refused)
			}
		})
	}
}

// TestLatchHoldsOffTheSourceLeft: when the SDP moves the media, the source
// latched before is held off leftHoldOff packets, which do not spend the
// NAT's chance; after them it may take the latch back (a peer behind a NAT
// whose SDP port changed) while the window is open, and not after it.
func TestLatchHoldsOffTheSourceLeft(t *testing.T) {
	old := netip.MustParseAddrPort("192.0.2.3:4000")
	for _, tt := range []struct {
		name string
		wait int64 // ticks that pass during the hold-off
		want bool
	}{
		{name: "within the window", wait: 1, want: true},
		{name: "after the window", wait: int64(natLatchWindow/clockTick) + 1, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := new(atomic.Int64)
			f := &forwarder{clock: clock}
			f.setCoreRemote(netip.MustParseAddrPort("198.51.100.1:5000"))
			if !f.accept(old) {
				t.Fatal("the first source within the window was refused")
			}
			f.setCoreRemote(netip.MustParseAddrPort("198.51.100.1:5002"))
			for i := range leftHoldOff {
				if f.accept(old) {
					t.Fatalf("the source left took the latch back after %d packets, want %d", i, leftHoldOff)
				}
			}
			clock.Add(tt.wait)
			if got := f.accept(old); got != tt.want {
				t.Errorf("after the hold-off: accept = %v, want %v", got, tt.want)
			}
			want := uint64(leftHoldOff)
			if !tt.want {
				want++
			}
			if got := f.stats().DroppedStranger; got != want {
				t.Errorf("DroppedStranger = %d, want %d", got, want)
			}
		})
	}
}

// TestLatchAllocatesNothing: neither the latched source's packets nor a
// stranger's flood allocate (or take a lock: there is none to take).
func TestLatchAllocatesNothing(t *testing.T) {
	core := netip.MustParseAddrPort("192.0.2.1:4000")
	stranger := netip.MustParseAddrPort("203.0.113.9:5004")
	f := &forwarder{clock: new(atomic.Int64)}
	f.setCoreRemote(core)
	f.accept(core)
	if n := testing.AllocsPerRun(1000, func() {
		f.accept(core)
		f.accept(stranger)
		_ = f.coreDest()
	}); n != 0 {
		t.Errorf("%v allocations per packet pair", n)
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

// BenchmarkCoreAccept: the core-side latch per packet, from the latched
// source and from a stranger (an RTP bleed flood), once the core latched.
func BenchmarkCoreAccept(b *testing.B) {
	core := netip.MustParseAddrPort("192.0.2.1:4000")
	stranger := netip.MustParseAddrPort("203.0.113.9:5004")
	for _, tt := range []struct {
		name string
		src  netip.AddrPort
		want bool
	}{{"latched", core, true}, {"stranger", stranger, false}} {
		b.Run(tt.name, func(b *testing.B) {
			f := &forwarder{}
			f.setCoreRemote(core)
			f.accept(core)
			b.ReportAllocs()
			for b.Loop() {
				if f.accept(tt.src) != tt.want {
					b.Fatal("wrong verdict")
				}
			}
		})
	}
}
