package mediabridge

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/internal/rawudp"
)

// rtpHeaderLen is the fixed RTP header (RFC 3550 §5.1).
const rtpHeaderLen = 12

// ptNone marks a payload type with no mapping: such packets are dropped.
const ptNone = 0xFF

// ptMap rewrites payload types between the legs. It is built once per
// negotiation and swapped atomically, so the packet path never locks.
type ptMap struct {
	webToCore [128]uint8
	coreToWeb [128]uint8
	clock     [128]uint32 // by the browser's payload type
	// A direction that does not flow (hold, RFC 3264 §5.1) is not relayed.
	webToCoreOff, coreToWebOff bool
	// coreEvents marks the core's telephone-event payload types with their
	// clock: its RFC 4733 digits are read (dtmf.go) and, unless
	// eventsToWeb, not relayed as they came (browsers do not report them).
	coreEvents  [128]uint32
	eventsToWeb bool
	// webEvents marks the browser's telephone-event payload types with
	// their clock: its digits are read (dtmf_path.go) and relayed to the
	// core only if eventsToCore (dtmf.to_core) and the core took them.
	webEvents    [128]uint32
	eventsToCore bool
	// codec is the audio codec the legs agreed on (Session.Codec), read
	// from any goroutine: the call's quality is rated by it.
	codec string
}

func newPTMap() *ptMap {
	m := &ptMap{}
	for i := range m.webToCore {
		m.webToCore[i] = ptNone
		m.coreToWeb[i] = ptNone
	}
	return m
}

// link maps one codec across the legs in both directions.
func (m *ptMap) link(webPT, corePT uint8) {
	m.webToCore[webPT&0x7f] = corePT
	m.coreToWeb[corePT&0x7f] = webPT
}

// alsoFromCore accepts a second core payload type for a codec, for cores that
// send with the type of our offer instead of their answer. A type already
// mapped is left alone.
func (m *ptMap) alsoFromCore(corePT, webPT uint8) {
	if m.coreToWeb[corePT&0x7f] == ptNone {
		m.coreToWeb[corePT&0x7f] = webPT
	}
}

// audioClockWeb is the clock of the browser's payload type webPT, or 0 for
// its events and unknown types: their timestamps say nothing of arrival
// times (rxStream.receive).
func (m *ptMap) audioClockWeb(webPT uint8) uint32 {
	if m.webEvents[webPT] != 0 {
		return 0
	}
	return m.clock[webPT]
}

// audioClockCore is audioClockWeb for the core's payload type corePT.
func (m *ptMap) audioClockCore(corePT uint8) uint32 {
	webPT := m.coreToWeb[corePT]
	if m.coreEvents[corePT] != 0 || webPT == ptNone {
		return 0
	}
	return m.clock[webPT]
}

// alsoFromWeb is alsoFromCore for the browser's payload types.
func (m *ptMap) alsoFromWeb(webPT, corePT uint8) {
	if m.webToCore[webPT&0x7f] == ptNone {
		m.webToCore[webPT&0x7f] = corePT
	}
}

type flowCounters struct {
	packets atomic.Uint64
	bytes   atomic.Uint64
}

func (c *flowCounters) add(n int) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

// forwarder is the per-session packet path. Everything the call goroutine
// changes is behind an atomic pointer; counters are atomic. No allocation,
// lock or log per packet.
type forwarder struct {
	core *rawudp.Socket // the session's core RTP socket

	pts atomic.Pointer[ptMap]
	// latch is where the core's media comes from and goes to (accept,
	// setCoreRemote); nil until the core's SDP names an address.
	latch atomic.Pointer[coreLatch]
	// leftBudget is how many more packets coreLatch.left is held off.
	leftBudget atomic.Int32
	// clock is the shared socket's coarse clock (webrtcSocket.clock), for
	// the NAT window; nil reads as 0 (tests).
	clock  *atomic.Int64
	webOut atomic.Pointer[webSender] // set once DTLS is up: SRTP keys exist
	// Digits (dtmf_path.go). Each leg's RFC 4733 is read by its receiver
	// and in-band tones of the core by toneIn; onDigit hears each digit
	// once. All of it is used on the poll loop only (onDigit is set before
	// media). Digits for the core are pushed by the call's goroutine.
	dtmfIn, dtmfWeb *dtmfReceiver
	toneIn          *toneReader // nil unless in-band detection is on
	onDigit         func(from Leg, form DTMFForm, d DTMFDigit)
	eventsOut       atomic.Pointer[eventSender] // nil when the core took no telephone-event
	tonesOut        toneSender
	seq             sequencer // poll loop only: the core's RTP toward the browser

	webToCoreFlow   flowCounters
	coreToWebFlow   flowCounters
	dropped         atomic.Uint64
	droppedEarly    atomic.Uint64
	droppedStranger atomic.Uint64
	rtcpFromCore    atomic.Uint64

	qos callQoS // poll loop only, but for its snapshot (qos.go)
}

// coreDest is the latched source when there is one (symmetric RTP, RFC
// 4961), else the SDP address.
func (f *forwarder) coreDest() netip.AddrPort {
	l := f.latch.Load()
	switch {
	case l == nil:
		return netip.AddrPort{}
	case l.latched.IsValid():
		return l.latched
	}
	return l.sdp
}

// webToCore forwards one decrypted RTP packet from the browser, in
// buf[:n], to the core, rewriting the payload type in place; a digit for
// the core takes the place of the audio (dtmf_path.go), so buf has room
// beyond n.
func (f *forwarder) webToCore(buf []byte, n int, sc *loopScratch) {
	pkt := buf[:n]
	if n < rtpHeaderLen || pkt[0]>>6 != 2 {
		f.dropped.Add(1)
		return
	}
	m := f.pts.Load()
	if m == nil {
		f.dropped.Add(1)
		return
	}
	webPT := pkt[1] & 0x7f
	f.qos.web.rx.receive(pkt, m.audioClockWeb(webPT), sc.now, f.qos.base)
	if clock := m.webEvents[webPT]; clock != 0 {
		f.readDigit(&f.dtmfWeb, LegWeb, pkt, clock)
		if !m.eventsToCore {
			return // the call sends them as INFO or tones
		}
	}
	pt := m.webToCore[webPT]
	dst := f.coreDest()
	if pt == ptNone || !dst.IsValid() {
		f.dropped.Add(1)
		return
	}
	if m.webToCoreOff {
		return
	}
	pkt[1] = pkt[1]&0x80 | pt
	if m.webEvents[webPT] == 0 {
		pkt = f.digitsIntoAudio(buf, pkt, m.clock[webPT], sc)
	}
	if err := f.core.WriteTo(pkt, dst); err != nil {
		f.dropped.Add(1)
		return
	}
	// A digit written in place of the audio is an event: its timestamp is
	// the digit's start, no clock for the sender report.
	txClock := m.audioClockWeb(webPT)
	if m.coreEvents[pkt[1]&0x7f] != 0 {
		txClock = 0
	}
	f.qos.core.tx.sent(pkt, txClock, sc.now)
	f.webToCoreFlow.add(n)
}

// coreToWeb forwards one RTP packet from the core, pkt from src, to the
// browser, if the latch takes src (accept). Before the browser side has
// SRTP keys the packet is dropped, never queued.
func (f *forwarder) coreToWeb(pkt []byte, src netip.AddrPort, sc *loopScratch) {
	n := len(pkt)
	if n < rtpHeaderLen || pkt[0]>>6 != 2 {
		f.dropped.Add(1)
		return
	}
	if !f.accept(src) {
		f.dropped.Add(1)
		return
	}
	m := f.pts.Load()
	if m != nil {
		f.qos.core.rx.receive(pkt, m.audioClockCore(pkt[1]&0x7f), sc.now, f.qos.base)
	}
	if m != nil && m.coreEvents[pkt[1]&0x7f] != 0 {
		// A digit is signalling: read even before the browser's keys exist.
		f.readDigit(&f.dtmfIn, LegCore, pkt, m.coreEvents[pkt[1]&0x7f])
		if !m.eventsToWeb {
			return
		}
	} else if f.toneIn != nil {
		f.toneIn.read(pkt, f.onDigit)
	}
	out := f.webOut.Load()
	if out == nil {
		f.droppedEarly.Add(1)
		f.dropped.Add(1)
		return
	}
	if m == nil {
		f.dropped.Add(1)
		return
	}
	pt := m.coreToWeb[pkt[1]&0x7f]
	if pt == ptNone {
		f.dropped.Add(1)
		return
	}
	if m.coreToWebOff {
		return
	}
	pkt[1] = pkt[1]&0x80 | pt
	f.seq.rewrite(pkt, m.clock[pt])
	if err := out.send(pkt, sc); err != nil {
		f.dropped.Add(1)
		return
	}
	f.qos.web.tx.sent(pkt, m.audioClockWeb(pt), sc.now)
	f.coreToWebFlow.add(n)
}

// accept tells whether a core packet from src is taken (symmetric RTP,
// RFC 4961; the rules are coreLatch's). The steady state, a packet from
// the latched source, is one atomic load and a compare; the rest takes
// acceptNew, which allocates only when the latch moves.
func (f *forwarder) accept(src netip.AddrPort) bool {
	if l := f.latch.Load(); l != nil && l.latched == src {
		return true
	}
	return f.acceptNew(src)
}

func (f *forwarder) acceptNew(src netip.AddrPort) bool {
	for {
		l := f.latch.Load()
		if l == nil || !l.takes(src, f) {
			f.droppedStranger.Add(1)
			return false
		}
		// The latch moves: once per peer, off the steady-state path.
		// Whatever took it, the NAT's chance is spent.
		if f.latch.CompareAndSwap(l, &coreLatch{sdp: l.sdp, latched: src, left: l.left}) {
			return true
		}
		// setCoreRemote replaced the latch meanwhile: decide again under
		// the new SDP.
	}
}

func (f *forwarder) now() int64 {
	if f.clock == nil {
		return 0
	}
	return f.clock.Load()
}

// setCoreRemote records the address the core's SDP names, at each of its
// answers and offers and at our answer to its offer. A changed address (a
// forked or re-sent answer, media moved by a re-INVITE) forgets the latch
// so the new peer is latched afresh, and holds the old source off. While
// nothing is latched, each call opens the NAT's chance again from now: a
// core may start sending only at its 200 after a 183, or after our answer.
func (f *forwarder) setCoreRemote(addr netip.AddrPort) {
	until := f.now() + int64(natLatchWindow/clockTick)
	for {
		old := f.latch.Load()
		n := &coreLatch{sdp: addr, natOpen: true, natUntil: until}
		switch {
		case old == nil:
		case old.sdp == addr && old.latched.IsValid():
			return // the same peer, latched: nothing changes
		case old.latched.IsValid():
			f.leftBudget.Store(leftHoldOff)
			n.left = old.latched
		default:
			n.left = old.left
		}
		if f.latch.CompareAndSwap(old, n) {
			return
		}
	}
}

// coreLatch is the state of the core-side latch. It is replaced whole, so
// the poll loop (accept) and the call goroutine (setCoreRemote) never see
// half of a change, and a latch taken under an old SDP never lands on a
// new one.
//
// A packet is taken from, and media is sent to (coreDest):
//   - the latched source;
//   - the address the core's SDP names, always: it takes the latch from
//     any other source (forks sending early media at once, a party moved
//     away by a re-INVITE, a NAT source latched before it);
//   - while nothing is latched, any other source with the first packet
//     after an SDP address was set, within natLatchWindow: a core behind
//     a NAT sends from an address its SDP cannot know. The source latched
//     before the SDP moved (left) is held off leftHoldOff packets first
//     and does not spend the chance meanwhile.
//
// Everything else is dropped and counted (Stats.DroppedStranger), never
// latched: a stranger spraying RTP at the port range (RTP bleed) must not
// take or hear the call's media.
type coreLatch struct {
	sdp     netip.AddrPort // the core's SDP address; invalid for a c=0.0.0.0 hold
	latched netip.AddrPort // invalid until a packet is taken
	left    netip.AddrPort // the latched source before the SDP moved the media
	// natOpen: nothing has latched since the SDP address was set, and
	// another source may until the clock passes natUntil.
	natOpen  bool
	natUntil int64
}

// takes tells whether src may take the latch (src is not latched).
func (l *coreLatch) takes(src netip.AddrPort, f *forwarder) bool {
	switch {
	case src == l.sdp:
		return true
	case l.latched.IsValid():
		return false
	case src == l.left && f.leftBudget.Add(-1) >= 0:
		return false
	}
	return l.natOpen && f.now() <= l.natUntil
}

// natLatchWindow is how long after the core's SDP address was set a source
// other than that address may still take the latch with the first packet
// (coreLatch). A core behind a NAT starts sending as soon as the answer is
// out, so its first packet comes well within it, while a stranger that
// sprays the port range afterwards finds the latch closed. The coarse
// clock (clockTick) makes the window at least this long and at most one
// tick longer.
const natLatchWindow = 2 * time.Second

// leftHoldOff is how many packets (a second of 20 ms audio) the source
// we moved away from is held off: a fork that keeps sending early media,
// or a party that was moved away, must not take the latch from the one
// the new SDP names before it starts sending. A source that is in fact
// the same behind a different SDP port takes it back after that, if the
// NAT's window is still open.
const leftHoldOff = 50

// sequencer keeps the stream toward the browser one stream when the source
// behind it changes (the core moved its media, an announcement server took
// over): the browser sees one SSRC, and its SRTP replay window would drop a
// new source's unrelated sequence numbers. It runs on the poll loop only.
type sequencer struct {
	started  bool
	src      uint32 // the core's current SSRC
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16 // last sent toward the browser
	lastTS   uint32
}

// rewrite adds the current offsets to pkt's sequence number and timestamp;
// a new source gets offsets that continue from the last packet sent, one
// 20 ms frame later.
func (q *sequencer) rewrite(pkt []byte, clock uint32) {
	ssrc := uint32(pkt[8])<<24 | uint32(pkt[9])<<16 | uint32(pkt[10])<<8 | uint32(pkt[11])
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
	jump := int16(seq + q.seqDelta - q.lastSeq)
	first := !q.started
	if first {
		q.started, q.src = true, ssrc
	} else if ssrc != q.src || jump > maxSeqJump || jump < -maxSeqJump {
		// A new source, or the same SSRC restarted elsewhere (an SBC
		// switching media servers): continue from the last packet sent.
		q.src = ssrc
		if clock == 0 {
			clock = 8000
		}
		q.seqDelta = q.lastSeq + 1 - seq
		q.tsDelta = q.lastTS + clock/50 - ts
	}
	seq += q.seqDelta
	ts += q.tsDelta
	pkt[2], pkt[3] = byte(seq>>8), byte(seq)
	pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	if first || int16(seq-q.lastSeq) > 0 {
		q.lastSeq, q.lastTS = seq, ts // a late packet does not move the mark back
	}
}

// maxSeqJump is the largest sequence gap taken as loss within one stream;
// a larger one is a restarted stream (RFC 3550 A.1 uses 3000).
const maxSeqJump = 3000
