package b2bua

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// RelayLookup tells whether a browser media address is a relay of the
// gateway's own TURN server, and how the browser reaches that relay
// ("udp", "tcp", "tls").
type RelayLookup func(addr netip.AddrPort) (transport string, ok bool)

// WithRelayLookup lets the gateway tell media relayed by its own TURN
// server from media that comes straight.
func WithRelayLookup(l RelayLookup) Option { return func(g *Gateway) { g.relays = l } }

// Media paths a call's browser media takes, as logged and counted.
const (
	pathUDP    = "udp"     // straight to media.webrtc_port
	pathICETCP = "ice-tcp" // ICE-TCP, RFC 6544
	pathTURN   = "turn-"   // + the transport to the gateway's TURN server
)

// onMediaConnected records which way the browser's media came: one log
// line per call and a count per path (Gateway.MediaPaths).
func (c *Call) onMediaConnected() {
	st := c.media.Stats()
	path := pathUDP
	if st.WebTransport == mediabridge.TransportTCP {
		path = pathICETCP
	}
	if c.g.relays != nil {
		if tr, ok := c.g.relays(st.WebAddr); ok {
			path = pathTURN + tr
		}
	}
	c.mediaPath = path
	c.g.mediaPaths.Add(path)
	c.log.Info("media path", zap.String("path", path), zap.Stringer("remote_addr", st.WebAddr))
	c.note("media", "ICE and DTLS up, SRTP keyed: media path %s, browser at %s", path, st.WebAddr)
}

// MediaPaths counts connected calls by the path their browser media took:
// "udp", "ice-tcp", "turn-udp", "turn-tcp", "turn-tls".
func (g *Gateway) MediaPaths() map[string]uint64 { return g.mediaPaths.Snapshot() }

// LiveQoS is the quality of every call up now, by the gateway's call id
// (the timelines' samples, the status page).
func (g *Gateway) LiveQoS() map[string]mediabridge.QoS {
	g.mu.Lock()
	calls := make([]*Call, 0, len(g.calls))
	for _, c := range g.calls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	out := make(map[string]mediabridge.QoS, len(calls))
	for _, c := range calls {
		out[c.id] = c.media.QoS()
	}
	return out
}
