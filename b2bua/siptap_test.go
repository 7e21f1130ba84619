package b2bua

import (
	"net"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
)

// TestCoreTapOwner: of the SIP sockets of a process holding the gateway
// and an in-process core, the gateway's are its ports and the connections
// it opened; the core's own sockets, and its sockets talking to the
// gateway, are not.
func TestCoreTapOwner(t *testing.T) {
	ups, err := newUpstreams(configs.Upstream{Proxy: "sip:127.0.0.1:5090;transport=udp"})
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{core: &coreSide{ups: ups, transport: "tcp", tlsPort: 5061, udpLocal: sip.Addr{IP: net.IPv4(127, 0, 0, 1), Port: 5070}}}
	owner := g.CoreTapOwner()
	for _, tc := range []struct {
		name, local, remote, transport string
		ours                           bool
		want                           string
	}{
		{"the gateway's UDP socket", "127.0.0.1:5070", "127.0.0.1:5090", "UDP", true, "UDP"},
		{"a TLS connection to the gateway", "127.0.0.1:5061", "10.0.0.9:40000", "TCP", true, "TLS"},
		{"a TCP connection the gateway opened to a P-CSCF on port 5070 elsewhere", "10.0.0.1:41000", "10.0.0.7:5070", "TCP", true, "TCP"},
		{"a TCP connection the gateway opened to the core by name", "127.0.0.1:41000", "192.0.2.10:5060", "TCP", true, "TCP"},
		{"the in-process core's socket", "127.0.0.1:5090", "127.0.0.1:5070", "UDP", false, ""},
		{"the in-process core's end of a connection the gateway opened", "127.0.0.1:5090", "127.0.0.1:41000", "TCP", false, ""},
		{"a connection the in-process core opened to the gateway", "127.0.0.1:42000", "127.0.0.1:5070", "TCP", false, ""},
	} {
		got, ours := owner(tc.local, tc.remote, tc.transport)
		if ours != tc.ours || got != tc.want {
			t.Errorf("%s: %q %v, want %q %v", tc.name, got, ours, tc.want, tc.ours)
		}
	}
}
