package turnserver

import "sync/atomic"

// Transport is how a client reaches the server (the relay is UDP always).
type Transport uint8

const (
	TransportUnknown Transport = iota
	TransportUDP
	TransportTCP
	TransportTLS
	numTransports
)

func (t Transport) String() string {
	switch t {
	case TransportUDP:
		return "udp"
	case TransportTCP:
		return "tcp"
	case TransportTLS:
		return "tls"
	}
	return "unknown"
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	// Active are the allocations that exist; Created those ever made.
	Active, Created PerTransport
	// RefusedAuth counts requests refused 401 for their credentials
	// (unknown user, expired REST username, wrong realm or password);
	// the challenge of a request without credentials is not a refusal.
	RefusedAuth uint64
	// RefusedQuota counts Allocates refused with 486 (or 508, see quotas).
	RefusedQuota uint64
	// RefusedPeer counts CreatePermission and ChannelBind refused 403 for
	// the peer policy; RefusedPermits those refused 403 because the
	// allocation holds as many peer permissions as it may.
	RefusedPeer, RefusedPermits uint64
	// DroppedToSelf counts datagrams a client sent (Send indication) to
	// a relay port or the listener of the server itself, dropped.
	DroppedToSelf uint64
	// RefusedConns counts TCP/TLS connections closed at accept because
	// too many were waiting for an allocation; TimedOutConns those closed
	// for having no allocation within the allocate timeout (or a failed
	// TLS handshake).
	RefusedConns, TimedOutConns uint64
	// ToPeers are datagrams relays sent to peers; FromPeers those they
	// received, including any pion dropped for want of a permission.
	ToPeers, FromPeers Traffic
}

// PerTransport is a count by client transport.
type PerTransport struct{ UDP, TCP, TLS int64 }

// Traffic is datagrams and their payload bytes.
type Traffic struct{ Packets, Bytes uint64 }

// counters are the server's atomic counters; relays update the traffic
// ones per datagram, so they take no lock.
type counters struct {
	active, created [numTransports]atomic.Int64

	refusedAuth, refusedQuota, refusedPeer, refusedPermits atomic.Uint64
	refusedConns, timedOutConns, droppedToSelf             atomic.Uint64

	toPeersPackets, toPeersBytes     atomic.Uint64
	fromPeersPackets, fromPeersBytes atomic.Uint64
}

func (c *counters) snapshot() Stats {
	per := func(v *[numTransports]atomic.Int64) PerTransport {
		return PerTransport{UDP: v[TransportUDP].Load(), TCP: v[TransportTCP].Load(), TLS: v[TransportTLS].Load()}
	}
	return Stats{
		Active:         per(&c.active),
		Created:        per(&c.created),
		RefusedAuth:    c.refusedAuth.Load(),
		RefusedQuota:   c.refusedQuota.Load(),
		RefusedPeer:    c.refusedPeer.Load(),
		RefusedPermits: c.refusedPermits.Load(),
		DroppedToSelf:  c.droppedToSelf.Load(),
		RefusedConns:   c.refusedConns.Load(),
		TimedOutConns:  c.timedOutConns.Load(),
		ToPeers:        Traffic{Packets: c.toPeersPackets.Load(), Bytes: c.toPeersBytes.Load()},
		FromPeers:      Traffic{Packets: c.fromPeersPackets.Load(), Bytes: c.fromPeersBytes.Load()},
	}
}
