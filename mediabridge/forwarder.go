package mediabridge

import (
	"net/netip"
	"sync/atomic"
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
	core *udpSocket // the session's core RTP socket

	pts        atomic.Pointer[ptMap]
	coreRemote atomic.Pointer[netip.AddrPort] // address from the core's SDP
	latched    atomic.Pointer[netip.AddrPort] // source of the first core RTP packet
	webOut     atomic.Pointer[webSender]      // set once DTLS is up: SRTP keys exist

	webToCoreFlow flowCounters
	coreToWebFlow flowCounters
	dropped       atomic.Uint64
	droppedEarly  atomic.Uint64
	rtcpFromCore  atomic.Uint64
}

// coreDest is the latched source when there is one (symmetric RTP, RFC
// 4961), else the SDP address.
func (f *forwarder) coreDest() netip.AddrPort {
	if p := f.latched.Load(); p != nil {
		return *p
	}
	if p := f.coreRemote.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// setCoreRemote records the SDP address; a changed address (a forked or
// re-sent answer) forgets the latch so the new peer is latched afresh.
func (f *forwarder) setCoreRemote(addr netip.AddrPort) {
	if old := f.coreRemote.Load(); old != nil && *old == addr {
		return
	}
	if !addr.IsValid() {
		f.coreRemote.Store(nil)
	} else {
		f.coreRemote.Store(&addr)
	}
	f.latched.Store(nil)
}

// webToCore forwards one decrypted RTP packet from the browser, in
// buf[:n], to the core, rewriting the payload type in place.
func (f *forwarder) webToCore(buf []byte, n int) {
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
	pt := m.webToCore[pkt[1]&0x7f]
	dst := f.coreDest()
	if pt == ptNone || !dst.IsValid() {
		f.dropped.Add(1)
		return
	}
	pkt[1] = pkt[1]&0x80 | pt
	if err := f.core.writeTo(pkt, dst); err != nil {
		f.dropped.Add(1)
		return
	}
	f.webToCoreFlow.add(n)
}

// coreToWeb forwards one RTP packet from the core, pkt from src, to the
// browser. The first valid packet latches src. Before the browser side has
// SRTP keys the packet is dropped, never queued.
func (f *forwarder) coreToWeb(pkt []byte, src netip.AddrPort, sc *loopScratch) {
	n := len(pkt)
	if n < rtpHeaderLen || pkt[0]>>6 != 2 {
		f.dropped.Add(1)
		return
	}
	if f.latched.Load() == nil {
		f.latch(src)
	}
	out := f.webOut.Load()
	if out == nil {
		f.droppedEarly.Add(1)
		f.dropped.Add(1)
		return
	}
	m := f.pts.Load()
	if m == nil {
		f.dropped.Add(1)
		return
	}
	pt := m.coreToWeb[pkt[1]&0x7f]
	if pt == ptNone {
		f.dropped.Add(1)
		return
	}
	pkt[1] = pkt[1]&0x80 | pt
	if err := out.send(pkt, sc); err != nil {
		f.dropped.Add(1)
		return
	}
	f.coreToWebFlow.add(n)
}

// latch stores the core's source address; it runs once per peer, so its
// single allocation is off the steady-state path.
func (f *forwarder) latch(src netip.AddrPort) {
	f.latched.Store(&src)
}
