package turnserver

import (
	"errors"
	"net"
	"testing"

	"github.com/pion/turn/v5"
)

// A port the client asks for (EVEN-PORT, RESERVATION-TOKEN) must be in
// the range too; a relay takes its user's quota until it closes. The same
// for the UDP listener's generator (the data path's relays) and the stream
// listeners' (pion's sockets).
func TestRelayGenerator(t *testing.T) {
	for _, kind := range []string{"data path", "pion"} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t, func(c *Config) { c.QuotaPerUser = 1 }, nil)
			path := r.srv.path
			if kind == "pion" {
				path = nil
			}
			testRelayGenerator(t, r, newRelayGenerator(r.srv, path))
		})
	}
}

func testRelayGenerator(t *testing.T, r *rig, g *relayGenerator) {
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{testPortMin - 1, testPortMax + 1} {
		if _, _, err := g.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4", UserID: "u", RequestedPort: p}); !errors.Is(err, errPortOutOfRange) {
			t.Errorf("requested port %d: %v", p, err)
		}
	}
	conn, addr, err := g.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4", UserID: "u", RequestedPort: testPortMax})
	if err != nil {
		t.Fatal(err)
	}
	if addr.(*net.UDPAddr).Port != testPortMax {
		t.Errorf("relay %v, asked for port %d", addr, testPortMax)
	}
	if _, _, err := g.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4", UserID: "u"}); !errors.Is(err, errQuota) {
		t.Errorf("second relay of a user with quota 1: %v", err)
	}
	// The probe of EVEN-PORT (no user) counts against nobody.
	probe, _, err := g.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4"})
	if err != nil {
		t.Fatal(err)
	}
	_ = probe.Close()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if n, all := r.srv.quotas.count("u"); n != 0 || all != 0 {
		t.Errorf("after close: %d of u, %d in all", n, all)
	}
	if _, _, err := g.AllocateListener(turn.AllocateListenerConfig{Network: "tcp4", UserID: "u"}); !errors.Is(err, errTCPRelay) {
		t.Errorf("TCP relay: %v", err)
	}
}
