package mediabridge

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/internal/emodel"
	"github.com/imsgate/imsgate/internal/rawudp"
	"github.com/pion/rtcp"
)

// Call quality. The gateway terminates RTCP on each leg instead of relaying
// it: a report from one side describes the stream between that side and the
// gateway, and forwarded to the other side its SSRCs and figures would
// describe a stream that leg never carried. So on each leg the gateway
// measures what it receives (RFC 3550 A.1 sequence accounting, A.8
// interarrival jitter), reads the far end's sender and receiver reports
// (its view of what the gateway sends, and the LSR/DLSR for the round trip),
// and sends that leg its own reports: an SR for the stream the gateway sends
// there (or an RR before it sent any), with a report block for the stream it
// receives. Toward the browser they go as SRTCP; toward the core as plain
// RTCP on the port pair's RTCP port.
//
// All of it runs on the poll loop, which owns the session's packets both
// ways; the call's goroutine reads a snapshot (Session.QoS) published at
// each report sent or read.

// qosReportInterval is the mean time between the gateway's reports on a
// leg (RFC 3550 §6.2's 5 s minimum), each drawn from half to one and a half
// of it (§6.3.1) so the calls' reports do not fall into step.
const qosReportInterval = 5 * time.Second

// maxDropout and maxMisorder are RFC 3550 A.1's bounds: a jump forward of
// more than maxDropout, or back of more than maxMisorder, restarts the count
// (the sender restarted its sequence).
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// rxStream is what the gateway measured of the stream it receives on a leg.
type rxStream struct {
	ssrc     uint32
	started  bool
	maxSeq   uint16
	cycles   uint32 // sequence number wraps, shifted (A.1's cycles)
	baseSeq  uint32
	received uint32
	// expectedPrior and receivedPrior are the counts at the last report
	// block, for its fraction lost (A.3).
	expectedPrior, receivedPrior uint32
	// Earlier sources on this leg (the core moved its media): their counts
	// stay in the call's totals, not in the new source's report blocks.
	carryExpected, carryLost int64

	// badSeq is where a jump must go on for the count to restart (A.1's
	// bad_seq): one stray packet does not.
	badSeq uint32

	transit     uint32 // the last packet's arrival minus its timestamp, in its clock
	haveTransit bool
	jitter      float64 // A.8's J, in timestamp units
	clock       uint32  // the last audio packet's clock rate

	lastSR   uint32    // middle 32 bits of the NTP time of the sender's last SR
	lastSRAt time.Time // when it came
}

// receive accounts one RTP packet that arrived at now; clock is its
// payload's clock rate, 0 for packets whose timestamps say nothing of their
// arrival (RFC 4733 events hold one timestamp for a whole digit).
func (r *rxStream) receive(pkt []byte, clock uint32, now, base time.Time) {
	ssrc := uint32(pkt[8])<<24 | uint32(pkt[9])<<16 | uint32(pkt[10])<<8 | uint32(pkt[11])
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	if !r.started || ssrc != r.ssrc {
		r.restart(ssrc, seq)
	}
	switch delta := seq - r.maxSeq; {
	case delta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	case delta <= 1<<16-maxMisorder:
		if uint32(seq) != r.badSeq {
			r.badSeq = uint32(seq + 1) // a stray packet, unless the next follows it
			return
		}
		r.restart(ssrc, seq) // two in a row: the sender restarted its sequence
	}
	r.received++
	if clock == 0 || now.IsZero() {
		return
	}
	ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
	arrival := uint32(now.Sub(base).Microseconds() * int64(clock) / 1e6)
	transit := arrival - ts
	if r.haveTransit && clock == r.clock {
		d := float64(int32(transit - r.transit))
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.transit, r.haveTransit, r.clock = transit, true, clock
}

// restart begins counting a new source, or the same one after a jump.
func (r *rxStream) restart(ssrc uint32, seq uint16) {
	if r.started {
		expected, lost := r.totals()
		r.carryExpected += expected
		r.carryLost += lost
	}
	*r = rxStream{
		ssrc: ssrc, started: true, maxSeq: seq, baseSeq: uint32(seq), badSeq: 1<<16 + 1,
		carryExpected: r.carryExpected, carryLost: r.carryLost,
		lastSR: r.lastSR, lastSRAt: r.lastSRAt,
	}
}

// totals is the current source's expected packets and lost ones (A.3).
func (r *rxStream) totals() (expected, lost int64) {
	if !r.started {
		return 0, 0
	}
	expected = int64(r.cycles+uint32(r.maxSeq)) - int64(r.baseSeq) + 1
	return expected, expected - int64(r.received)
}

// block is the report block for the stream (RFC 3550 §6.4.1), and starts
// the next interval for its fraction lost.
func (r *rxStream) block(now time.Time) rtcp.ReceptionReport {
	expected, lost := r.totals()
	expInterval := uint32(expected) - r.expectedPrior
	lostInterval := int64(expInterval) - int64(r.received-r.receivedPrior)
	r.expectedPrior, r.receivedPrior = uint32(expected), r.received
	var fraction uint8
	if expInterval != 0 && lostInterval > 0 {
		fraction = uint8(lostInterval << 8 / int64(expInterval))
	}
	b := rtcp.ReceptionReport{
		SSRC:               r.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(min(max(lost, 0), 0x7fffff)),
		LastSequenceNumber: r.cycles + uint32(r.maxSeq),
		Jitter:             uint32(r.jitter),
		LastSenderReport:   r.lastSR,
	}
	if r.lastSR != 0 {
		b.Delay = uint32(now.Sub(r.lastSRAt).Seconds() * 65536)
	}
	return b
}

// txStream is what the gateway sent on a leg, for its sender reports.
type txStream struct {
	ssrc     uint32
	started  bool
	firstSeq uint16 // the far end's base sequence number, as it will count
	packets  uint32
	octets   uint32 // payload octets
	lastTS   uint32
	lastAt   time.Time
	clock    uint32
	// seqs accounts the sequence numbers sent as a receiver would: its
	// "lost" are the gaps the gateway passed on (lost on the other leg, or
	// not relayed), which the far end counts as lost on this one.
	seqs rxStream
}

// gaps is how many sequence numbers the stream skipped so far.
func (t *txStream) gaps() int64 {
	_, lost := t.seqs.totals()
	return max(lost+t.seqs.carryLost, 0)
}

func (t *txStream) sent(pkt []byte, clock uint32, now time.Time) {
	ssrc := uint32(pkt[8])<<24 | uint32(pkt[9])<<16 | uint32(pkt[10])<<8 | uint32(pkt[11])
	if t.started && ssrc != t.ssrc {
		*t = txStream{} // a sender report counts one SSRC's packets
	}
	if !t.started {
		t.started, t.firstSeq = true, uint16(pkt[2])<<8|uint16(pkt[3])
	}
	t.seqs.receive(pkt, 0, time.Time{}, time.Time{})
	t.ssrc = ssrc
	t.packets++
	t.octets += uint32(payloadLen(pkt))
	if clock != 0 {
		t.lastTS = uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
		t.lastAt, t.clock = now, clock
	}
}

// payloadLen is an RTP packet's payload octets: without CSRCs, header
// extension or padding (RFC 3550 §6.4.1's sender's octet count).
func payloadLen(pkt []byte) int {
	n := rtpHeaderLen + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 && len(pkt) >= n+4 {
		n += 4 + 4*(int(pkt[n+2])<<8|int(pkt[n+3]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 && end > n {
		end -= int(pkt[end-1])
	}
	return max(end-n, 0)
}

// remoteView is what the far end of a leg last reported about the stream
// the gateway sends it.
type remoteView struct {
	reported  bool
	totalLost int64
	expected  int64 // by its highest sequence number, from our first packet
	// gaps is txStream.gaps when the report came: those packets the far end
	// counts as lost were never sent on this leg.
	gaps    int64
	jitter  uint32
	rtt     time.Duration
	haveRTT bool
}

// legQoS is one leg's reception, sending and the far end's reports.
type legQoS struct {
	rx     rxStream
	tx     txStream
	remote remoteView
	next   time.Time // the gateway's next report on this leg
	// rtcpFrom is where the core's RTCP comes from, where ours goes
	// (symmetric RTCP, RFC 4961); the web leg's goes where its media does.
	rtcpFrom netip.AddrPort
}

// readReports takes the far end's compound RTCP: the LSR of its SR, and the
// report blocks about ours (stream ours, the SSRC we send it).
func (l *legQoS) readReports(raw []byte, ours uint32, now time.Time) bool {
	pkts, err := rtcp.Unmarshal(raw)
	if err != nil {
		return false
	}
	for _, p := range pkts {
		var blocks []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			// The LSR we echo is that of the stream we receive.
			if !l.rx.started || p.SSRC == l.rx.ssrc {
				l.rx.lastSR, l.rx.lastSRAt = uint32(p.NTPTime>>16), now
			}
			blocks = p.Reports
		case *rtcp.ReceiverReport:
			blocks = p.Reports
		}
		for _, b := range blocks {
			if b.SSRC == ours {
				l.takeBlock(b, now)
			}
		}
	}
	return true
}

func (l *legQoS) takeBlock(b rtcp.ReceptionReport, now time.Time) {
	v := &l.remote
	v.reported = true
	v.totalLost = int64(b.TotalLost & 0xffffff)
	if v.totalLost&0x800000 != 0 { // 24-bit two's complement: duplicates
		v.totalLost -= 1 << 24
	}
	v.expected = int64(b.LastSequenceNumber) - int64(l.tx.firstSeq) + 1
	v.gaps = l.tx.gaps()
	v.jitter = b.Jitter
	if b.LastSenderReport != 0 {
		// RFC 3550 §6.4.1: A - LSR - DLSR, in 1/65536 s.
		rtt := ntpMiddle(now) - b.LastSenderReport - b.Delay
		if int32(rtt) >= 0 {
			v.rtt, v.haveRTT = time.Duration(uint64(rtt)*uint64(time.Second)>>16), true
		}
	}
}

// compound is the gateway's report on the leg, sent as ssrc: an SR once it
// has sent media there, else an RR; a block for the stream it receives; and
// the SDES CNAME RFC 3550 §6.1 asks for.
func (l *legQoS) compound(ssrc uint32, cname string, now time.Time) []rtcp.Packet {
	var blocks []rtcp.ReceptionReport
	if l.rx.started {
		blocks = []rtcp.ReceptionReport{l.rx.block(now)}
	}
	var report rtcp.Packet = &rtcp.ReceiverReport{SSRC: ssrc, Reports: blocks}
	if l.tx.packets > 0 {
		rtpTime := l.tx.lastTS
		if l.tx.clock != 0 {
			rtpTime += uint32(now.Sub(l.tx.lastAt).Microseconds() * int64(l.tx.clock) / 1e6)
		}
		report = &rtcp.SenderReport{SSRC: ssrc, NTPTime: ntpTime(now), RTPTime: rtpTime,
			PacketCount: l.tx.packets, OctetCount: l.tx.octets, Reports: blocks}
	}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: ssrc, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: cname}},
	}}}
	return []rtcp.Packet{report, sdes}
}

// due tells whether the leg's report is due at now, and draws the next
// from interval.
func (l *legQoS) due(now time.Time, interval time.Duration) bool {
	if now.IsZero() || now.Before(l.next) {
		return false
	}
	first := l.next.IsZero()
	l.next = now.Add(time.Duration((0.5 + rand.Float64()) * float64(interval)))
	return !first // the first round only starts the clock
}

// callQoS is the session's quality state: poll loop only, but for snap.
type callQoS struct {
	base      time.Time // the origin of arrival times for jitter
	web, core legQoS
	localSSRC uint32 // our SSRC toward the core before the browser's media is forwarded
	cname     string
	rtcpSock  *rawudp.Socket // the core RTCP socket
	interval  time.Duration  // qosReportInterval; tests shorten it
	snap      atomic.Pointer[QoS]
	published time.Time // when snap was
}

// coreSSRC is the SSRC of the stream the gateway sends the core: the
// browser's, which it forwards unchanged.
func (q *callQoS) coreSSRC() uint32 {
	if q.core.tx.started {
		return q.core.tx.ssrc
	}
	return q.localSSRC
}

// reportDue sends each leg's report that is due; called on the poll loop
// with every packet of the session, which flows every 20 ms while media
// does.
func (f *forwarder) reportDue(sc *loopScratch) {
	q := &f.qos
	sent := false
	if q.web.due(sc.now, q.interval) {
		sent = f.reportToWeb(sc) || sent
	}
	if q.core.due(sc.now, q.interval) {
		sent = f.reportToCore(sc.now) || sent
	}
	if sent || sc.now.Sub(q.published) >= qosPublishEvery {
		q.publish(sc.now)
	}
}

// reportToWeb sends the browser an SRTCP compound from our SSRC toward it.
func (f *forwarder) reportToWeb(sc *loopScratch) bool {
	out := f.webOut.Load()
	if out == nil {
		return false
	}
	addr, ok := out.ep.remoteAddr()
	if !ok {
		return false
	}
	raw, err := rtcp.Marshal(f.qos.web.compound(out.ep.ssrc, f.qos.cname, sc.now))
	if err != nil {
		return false
	}
	enc, err := out.ctx.EncryptRTCP(sc.web.slot(), raw, nil)
	if err != nil {
		return false
	}
	return sc.web.commit(len(enc), addr) == nil
}

// reportToCore sends the core a plain RTCP compound, where its RTCP comes
// from or else to the RTCP port beside its SDP's RTP port (RFC 3550 §11).
func (f *forwarder) reportToCore(now time.Time) bool {
	q := &f.qos
	dst := q.core.rtcpFrom
	if !dst.IsValid() {
		rtp := f.coreDest()
		if !rtp.IsValid() {
			return false
		}
		dst = netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
	}
	raw, err := rtcp.Marshal(q.core.compound(q.coreSSRC(), q.cname, now))
	if err != nil {
		return false
	}
	return q.rtcpSock.WriteTo(raw, dst) == nil
}

// webRTCP takes the browser's decrypted compound RTCP.
func (f *forwarder) webRTCP(raw []byte, ours uint32, sc *loopScratch) {
	if f.qos.web.readReports(raw, ours, sc.now) {
		f.qos.publish(sc.now)
	}
	f.reportDue(sc)
}

// coreRTCP takes the core's RTCP from src; the core's RTP latch decides
// whether a source is the core's at all: RTCP from elsewhere is a stranger's.
func (f *forwarder) coreRTCP(raw []byte, src netip.AddrPort, sc *loopScratch) {
	f.rtcpFromCore.Add(1)
	l := f.latch.Load()
	if l == nil || (src.Addr() != l.sdp.Addr() && src.Addr() != l.latched.Addr()) {
		return
	}
	if f.qos.core.readReports(raw, f.qos.coreSSRC(), sc.now) {
		f.qos.core.rtcpFrom = src
		f.qos.publish(sc.now)
	}
	f.reportDue(sc)
}

// LegQoS is a call's quality on one leg.
type LegQoS struct {
	// What the gateway measured of the media it received on this leg.
	PacketsReceived uint64  `json:"packets_received"`
	PacketsLost     int64   `json:"packets_lost"`
	LossPercent     float64 `json:"loss_percent"` // of the packets expected
	JitterMs        float64 `json:"jitter_ms"`    // RFC 3550 interarrival jitter
	// What the far end of this leg last reported of the media the gateway
	// sends it (its RTCP), less the gaps the gateway passed on from the
	// other leg; and the round trip from the gateway's reports.
	Reported          bool    `json:"reported"`
	RemotePacketsLost int64   `json:"remote_packets_lost"`
	RemoteLossPercent float64 `json:"remote_loss_percent"`
	RemoteJitterMs    float64 `json:"remote_jitter_ms"`
	RTTMs             float64 `json:"rtt_ms,omitempty"` // 0 until measured
	// RFactor and MOS rate the leg (ITU-T G.107) from the worse direction's
	// loss and jitter, the round trip and the codec; 0 while no media came
	// either way.
	RFactor float64 `json:"r_factor,omitempty"`
	MOS     float64 `json:"mos,omitempty"`
}

// QoS is a call's quality on both legs.
type QoS struct {
	Web  LegQoS `json:"web"`
	Core LegQoS `json:"core"`
}

// qosPublishEvery is how often the figures are published while media
// flows, between reports.
const qosPublishEvery = time.Second

// publish makes the current figures readable by the call's goroutine.
func (q *callQoS) publish(now time.Time) {
	cur := q.current()
	q.snap.Store(&cur)
	q.published = now
}

func (q *callQoS) current() QoS {
	return QoS{Web: q.web.figures(), Core: q.core.figures()}
}

func (l *legQoS) figures() LegQoS {
	expected, lost := l.rx.totals()
	expected += l.rx.carryExpected
	lost += l.rx.carryLost
	var out LegQoS
	out.PacketsReceived = uint64(expected - lost)
	out.PacketsLost = max(lost, 0)
	if expected > 0 {
		out.LossPercent = 100 * float64(out.PacketsLost) / float64(expected)
	}
	if l.rx.clock != 0 {
		out.JitterMs = 1000 * l.rx.jitter / float64(l.rx.clock)
	}
	if v := l.remote; v.reported {
		out.Reported = true
		// The leg's own loss: not the gaps the gateway passed on. A gap
		// sent after the far end's last packet is taken off early; the
		// next report puts it right.
		out.RemotePacketsLost = max(v.totalLost-v.gaps, 0)
		if sent := v.expected - v.gaps; sent > 0 {
			out.RemoteLossPercent = 100 * float64(out.RemotePacketsLost) / float64(sent)
		}
		if l.tx.clock != 0 {
			out.RemoteJitterMs = 1000 * float64(v.jitter) / float64(l.tx.clock)
		}
		if v.haveRTT {
			out.RTTMs = float64(v.rtt) / float64(time.Millisecond)
		}
	}
	return out
}

// QoS is the call's quality, rated for the codec the legs agreed on. While
// media flows it is at most qosPublishEvery old; once the session is
// closed it is final. Safe from any goroutine.
func (s *Session) QoS() QoS {
	var out QoS
	if s.quiet.Load() {
		out = s.fwd.qos.current() // the poll loop is done with the session
	} else if q := s.fwd.qos.snap.Load(); q != nil {
		out = *q
	}
	codec := emodel.CodecNamed(s.Codec())
	rate(&out.Web, codec)
	rate(&out.Core, codec)
	return out
}

// rate fills a leg's R and MOS. The one-way delay is half the round trip,
// a jitter buffer of twice the jitter, and 20 ms of packetization.
func rate(l *LegQoS, codec emodel.Codec) {
	if l.PacketsReceived == 0 && !l.Reported {
		return
	}
	loss := max(l.LossPercent, l.RemoteLossPercent)
	jitter := max(l.JitterMs, l.RemoteJitterMs)
	delay := l.RTTMs/2 + 2*jitter + 20
	l.RFactor = emodel.R(codec, loss, delay)
	l.MOS = emodel.MOS(l.RFactor)
}

// ntpTime is t as RFC 3550's 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// ntpMiddle is the middle 32 bits of t's NTP timestamp, LSR's unit.
func ntpMiddle(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }
