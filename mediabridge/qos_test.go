package mediabridge

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func TestRxStreamAccounting(t *testing.T) {
	type pkt struct {
		ssrc uint32
		seq  uint16
	}
	seqs := func(ssrc uint32, from, to uint16, skip func(uint16) bool) []pkt {
		var out []pkt
		for s := from; s != to+1; s++ {
			if skip == nil || !skip(s) {
				out = append(out, pkt{ssrc, s})
			}
		}
		return out
	}
	for _, tc := range []struct {
		name                   string
		in                     []pkt
		wantExpected, wantLost int64
		wantExtMax             uint32
	}{
		{"in order", seqs(1, 100, 199, nil), 100, 0, 199},
		{"every tenth lost", seqs(1, 100, 199, func(s uint16) bool { return s%10 == 5 }), 100, 10, 199},
		{"across the wrap", seqs(1, 65500, 99, nil), 136, 0, 1<<16 + 99},
		{"late and duplicate packets", []pkt{{1, 10}, {1, 12}, {1, 11}, {1, 12}, {1, 13}}, 4, -1, 13},
		// A.1: the first packet of a jump is held as stray; the next, in
		// line with it, restarts the count.
		{"a jump restarts the count, earlier loss kept", append(seqs(1, 10, 20, func(s uint16) bool { return s == 15 }), seqs(1, 40000, 40009, nil)...), 20, 1, 40009},
		{"a stray packet does not", append(append(seqs(1, 10, 20, nil), pkt{1, 50000}), seqs(1, 21, 30, nil)...), 21, 0, 30},
		{"a new source", append(seqs(1, 10, 19, func(s uint16) bool { return s == 12 }), seqs(2, 500, 509, func(s uint16) bool { return s == 505 })...), 20, 2, 509},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rxStream
			for _, p := range tc.in {
				r.receive(bareRTP(p.ssrc, p.seq, 0), 0, time.Time{}, time.Time{})
			}
			exp, lost := r.totals()
			exp += r.carryExpected
			lost += r.carryLost
			if exp != tc.wantExpected || lost != tc.wantLost {
				t.Errorf("expected %d lost %d, want %d and %d", exp, lost, tc.wantExpected, tc.wantLost)
			}
			if b := r.block(time.Now()); b.LastSequenceNumber != tc.wantExtMax {
				t.Errorf("extended highest sequence %d, want %d", b.LastSequenceNumber, tc.wantExtMax)
			}
		})
	}
}

func TestRxStreamFractionLostPerInterval(t *testing.T) {
	var r rxStream
	for s := uint16(1); s <= 100; s++ {
		if s%4 != 2 { // a quarter lost
			r.receive(bareRTP(7, s, 0), 0, time.Time{}, time.Time{})
		}
	}
	if b := r.block(time.Now()); b.FractionLost != 64 || b.TotalLost != 25 {
		t.Errorf("first interval: fraction %d/256 lost %d, want 64 and 25", b.FractionLost, b.TotalLost)
	}
	for s := uint16(101); s <= 200; s++ {
		r.receive(bareRTP(7, s, 0), 0, time.Time{}, time.Time{})
	}
	if b := r.block(time.Now()); b.FractionLost != 0 || b.TotalLost != 25 {
		t.Errorf("clean interval: fraction %d lost %d, want 0 and 25", b.FractionLost, b.TotalLost)
	}
}

// TestRxStreamJitter: packets every 20 ms of media that arrive with a
// delay alternating between 0 and d have, by RFC 3550 A.8, a jitter that
// converges on d.
func TestRxStreamJitter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clock uint32
		d     time.Duration
	}{
		{"steady", 8000, 0},
		{"8 kHz, 10 ms", 8000, 10 * time.Millisecond},
		{"48 kHz, 4 ms", 48000, 4 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rxStream
			base := time.Unix(1000, 0)
			step := uint32(tc.clock / 50)
			for i := range 500 {
				at := base.Add(time.Duration(i) * 20 * time.Millisecond)
				if i%2 == 1 {
					at = at.Add(tc.d)
				}
				r.receive(bareRTP(9, uint16(i), 12345+uint32(i)*step), tc.clock, at, base)
			}
			got := 1000 * r.jitter / float64(tc.clock)
			want := float64(tc.d) / float64(time.Millisecond)
			if math.Abs(got-want) > 0.2 {
				t.Errorf("jitter %.2f ms, want %.2f", got, want)
			}
		})
	}
}

// TestRemoteReportRoundTrip: an RR about our stream, answering an SR sent
// 80 ms ago after holding it 30 ms, gives a 50 ms round trip and the far
// end's loss and jitter.
func TestRemoteReportRoundTrip(t *testing.T) {
	var l legQoS
	now := time.Now()
	for s := uint16(1000); s < 1100; s++ {
		l.tx.sent(bareRTP(42, s, uint32(s)*160), 8000, now)
	}
	srAt := now.Add(-80 * time.Millisecond)
	rr := &rtcp.ReceiverReport{SSRC: 5, Reports: []rtcp.ReceptionReport{
		{SSRC: 99, TotalLost: 50}, // another stream's: ignored
		{SSRC: 42, TotalLost: 5, LastSequenceNumber: 1099, Jitter: 80, LastSenderReport: ntpMiddle(srAt), Delay: 30 * 65536 / 1000},
	}}
	raw, err := rtcp.Marshal([]rtcp.Packet{rr})
	if err != nil {
		t.Fatal(err)
	}
	if !l.readReports(raw, 42, now) {
		t.Fatal("report not read")
	}
	f := l.figures()
	if !f.Reported || f.RemotePacketsLost != 5 || math.Abs(f.RemoteLossPercent-5) > 0.01 || math.Abs(f.RemoteJitterMs-10) > 0.01 {
		t.Errorf("remote figures %+v, want 5 lost (5 %%) and 10 ms of jitter", f)
	}
	if math.Abs(f.RTTMs-50) > 1 {
		t.Errorf("RTT %.2f ms, want 50", f.RTTMs)
	}
	if l.readReports([]byte{0x80, 201, 0, 7}, 42, now) {
		t.Error("a truncated report was read")
	}
}

// TestQoSBothLegs: a pion browser with RTCP reports (pion's interceptors)
// talks through the gateway to a core that loses every tenth packet of its
// own stream and sends receiver reports. The gateway measures the core
// leg's loss, reports it to the core's RTCP address, reads both sides'
// reports and the round trips, and rates the lossy leg below the clean one.
func TestQoSBothLegs(t *testing.T) {
	e := newTestEngine(t)
	core := newTestCore(t)
	coreRTCP, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer coreRTCP.Close()
	browser := newTestBrowserWith(t, &interceptor.Registry{})
	s := newTestSession(t, e)
	s.fwd.qos.interval = 300 * time.Millisecond
	gatewayRTP := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.ports.port))
	gatewayRTCP := netip.AddrPortFrom(gatewayRTP.Addr(), gatewayRTP.Port()+1)

	coreOffer, err := s.WebOffer(browser.offer(t))
	if err != nil {
		t.Fatalf("WebOffer: %v", err)
	}
	_ = coreOffer
	webAnswer, err := s.CoreAnswer(coreSDP(core.addr(), 96))
	if err != nil {
		t.Fatalf("CoreAnswer: %v", err)
	}
	browser.setAnswer(t, webAnswer)
	waitChan(t, "browser connected", browser.connected)

	// The core's reports: what it reads of ours, and an RR about the
	// browser's stream answering our last SR.
	var (
		mu        sync.Mutex
		fromUs    []rtcp.ReceptionReport
		lastOurSR uint64
		srAt      time.Time
	)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := coreRTCP.Read(buf)
			if err != nil {
				return
			}
			pkts, err := rtcp.Unmarshal(buf[:n])
			if err != nil {
				t.Errorf("the gateway's RTCP to the core does not parse: %v", err)
				return
			}
			mu.Lock()
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.SenderReport:
					fromUs = append(fromUs, p.Reports...)
					lastOurSR, srAt = p.NTPTime, time.Now()
				case *rtcp.ReceiverReport:
					fromUs = append(fromUs, p.Reports...)
				}
			}
			mu.Unlock()
		}
	}()

	var browserSSRC uint32
	stopBrowser := repeat(func(seq uint16) {
		_ = browser.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte("to-core")})
	})
	defer stopBrowser()
	stopCore := repeat(func(seq uint16) {
		if seq%10 != 5 {
			_, _ = core.conn.WriteToUDPAddrPort(rtpBytes(t, 96, seq, []byte("from-core")), gatewayRTP)
		}
		select {
		case p := <-core.received:
			browserSSRC = p.SSRC
		default:
		}
		mu.Lock()
		sr, at := lastOurSR, srAt
		mu.Unlock()
		if seq%10 == 0 && browserSSRC != 0 {
			rr := &rtcp.ReceiverReport{SSRC: 0x11223344, Reports: []rtcp.ReceptionReport{{
				SSRC: browserSSRC, TotalLost: 3, LastSequenceNumber: uint32(seq), Jitter: 8,
				LastSenderReport: uint32(sr >> 16), Delay: uint32(time.Since(at).Seconds() * 65536),
			}}}
			if sr == 0 {
				rr.Reports[0].Delay = 0
			}
			raw, _ := rtcp.Marshal([]rtcp.Packet{rr})
			_, _ = coreRTCP.WriteToUDPAddrPort(raw, gatewayRTCP)
		}
	})
	defer stopCore()

	var q QoS
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		q = s.QoS()
		if q.Core.PacketsReceived > 150 && q.Web.PacketsReceived > 150 &&
			q.Web.Reported && q.Web.RTTMs > 0 && q.Core.Reported && q.Core.RTTMs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("both legs not measured and reported in 10 s: %+v", q)
		}
	}
	t.Logf("web %+v", q.Web)
	t.Logf("core %+v", q.Core)
	if math.Abs(q.Core.LossPercent-10) > 2 {
		t.Errorf("core leg loss %.1f %%, want 10", q.Core.LossPercent)
	}
	if q.Web.LossPercent > 1 {
		t.Errorf("web leg loss %.1f %%, want none", q.Web.LossPercent)
	}
	if q.Core.RemotePacketsLost != 3 || q.Core.RTTMs > 100 || q.Web.RTTMs > 100 {
		t.Errorf("the far ends' reports: core lost %d (want 3), round trips core %.1f web %.1f ms", q.Core.RemotePacketsLost, q.Core.RTTMs, q.Web.RTTMs)
	}
	if q.Core.MOS == 0 || q.Web.MOS == 0 || q.Core.MOS >= q.Web.MOS-0.3 {
		t.Errorf("MOS core %.2f web %.2f: the lossy leg must rate clearly lower", q.Core.MOS, q.Web.MOS)
	}
	mu.Lock()
	defer mu.Unlock()
	var about *rtcp.ReceptionReport
	for i := range fromUs {
		if fromUs[i].SSRC == 0x11223344 {
			about = &fromUs[i]
		}
	}
	if about == nil || about.TotalLost == 0 || about.FractionLost == 0 {
		t.Fatalf("the gateway's reports to the core: %+v, want blocks about its stream with its loss", fromUs)
	}
}

func TestPayloadLen(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		want int
	}{
		{"plain", append(bareRTP(1, 1, 1), make([]byte, 160)...), 160},
		{"two CSRCs", func() []byte { p := append(bareRTP(1, 1, 1), make([]byte, 8+160)...); p[0] |= 2; return p }(), 160},
		{"an extension of one word", func() []byte {
			p := append(bareRTP(1, 1, 1), 0xbe, 0xde, 0, 1, 1, 2, 3, 4)
			p[0] |= 0x10
			return append(p, make([]byte, 160)...)
		}(), 160},
		{"padding", func() []byte {
			p := append(bareRTP(1, 1, 1), make([]byte, 164)...)
			p[0] |= 0x20
			p[len(p)-1] = 4
			return p
		}(), 160},
		{"padding longer than the packet", func() []byte { p := bareRTP(1, 1, 1); p[0] |= 0x20; p[11] = 200; return p }(), 0},
	} {
		if got := payloadLen(tc.pkt); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
