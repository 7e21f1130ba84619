package mediabridge

import "net/netip"

// FlowStats counts packets forwarded in one direction.
type FlowStats struct {
	Packets uint64
	Bytes   uint64
}

// Stats is a snapshot of a session's packet counters.
type Stats struct {
	WebToCore FlowStats
	CoreToWeb FlowStats
	// Dropped counts every packet not forwarded, both directions: not RTP
	// version 2, unmapped payload type, no destination yet, write failure,
	// browser SRTP before the keys or failing authentication or the replay
	// check, or early core packets (below).
	Dropped uint64
	// DroppedEarly counts core packets that came before the browser side had
	// SRTP keys (ICE+DTLS not connected); they are dropped, never queued.
	DroppedEarly uint64
	// DroppedStranger counts core RTP packets the latch refused (RTP bleed):
	// from a source that is neither the latched one nor the address the
	// core's SDP names, once a NAT's chance (the first packet, within about
	// 2 s of the SDP) is spent or over; and those of the source the media
	// moved away from while it is held off. They are in Dropped too.
	DroppedStranger uint64
	// RTCPFromCore counts RTCP packets read on the core RTCP port (read for
	// the call's quality, not relayed: qos.go).
	RTCPFromCore uint64
	// RTCPFromWeb counts SRTCP packets from the browser that decrypted
	// (read, not relayed).
	RTCPFromWeb uint64
	// LatchedAddr is the core's RTP source address, once latched.
	LatchedAddr netip.AddrPort
	// WebTransport and WebAddr are the browser's media path
	// (Session.WebPath): UDP or ICE-TCP, and the browser's address on it.
	WebTransport Transport
	WebAddr      netip.AddrPort
}

func (f *forwarder) stats() Stats {
	s := Stats{
		WebToCore:       FlowStats{Packets: f.webToCoreFlow.packets.Load(), Bytes: f.webToCoreFlow.bytes.Load()},
		CoreToWeb:       FlowStats{Packets: f.coreToWebFlow.packets.Load(), Bytes: f.coreToWebFlow.bytes.Load()},
		Dropped:         f.dropped.Load(),
		DroppedEarly:    f.droppedEarly.Load(),
		DroppedStranger: f.droppedStranger.Load(),
		RTCPFromCore:    f.rtcpFromCore.Load(),
	}
	if l := f.latch.Load(); l != nil {
		s.LatchedAddr = l.latched
	}
	return s
}
