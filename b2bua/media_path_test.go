package b2bua

import (
	"net/netip"
	"testing"
	"time"

	"github.com/imsgate/imsgate/mediabridge"
)

// TestMediaPathCounted: a call's connected media is counted under its
// path; the gateway's own TURN relays name their transport.
func TestMediaPathCounted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		relays RelayLookup
		want   string
	}{
		{"straight", nil, "udp"},
		{"through our turn", func(netip.AddrPort) (string, bool) { return "tls", true }, "turn-tls"},
		{"not one of our relays", func(netip.AddrPort) (string, bool) { return "", false }, "udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, core, f := newWebRig(t)
			g.relays = tc.relays
			answeredCall(t, g, core, f)
			c := g.callByWeb(f.name, "web-call-1")
			c.enqueue(event{kind: evMedia, media: mediabridge.Event{Kind: mediabridge.EventConnected}})
			deadline := time.Now().Add(2 * time.Second)
			for g.MediaPaths()[tc.want] != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("media paths %v, want %s counted once", g.MediaPaths(), tc.want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
