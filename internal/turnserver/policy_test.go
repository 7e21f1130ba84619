package turnserver

import (
	"net/netip"
	"slices"
	"testing"
)

func TestPeerClassify(t *testing.T) {
	p := newPeerPolicy(Config{
		AllowedPeers: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("::ffff:172.16.5.0/120")},
	}, nil, 0)
	cases := []struct {
		addr string
		want peerClass
	}{
		{"8.8.8.8", peerPublic},
		{"2001:4860:4860::8888", peerPublic},
		{"64:ff9b::808:808", peerPublic}, // NAT64 of 8.8.8.8
		{"10.9.1.1", peerAllowed},
		{"::ffff:10.9.1.1", peerAllowed},
		{"172.16.5.9", peerAllowed},
		{"10.1.2.3", peerPrivate},
		{"172.31.255.255", peerPrivate},
		{"192.168.0.1", peerPrivate},
		{"fc00::1", peerPrivate},
		{"fd00::2", peerPrivate},
		{"64:ff9b:1::1", peerPrivate},
		{"64:ff9b::a01:203", peerPrivate}, // NAT64 of 10.1.2.3
		{"::ffff:192.168.1.1", peerPrivate},
		{"100.64.0.1", peerShared},
		{"100.127.255.255", peerShared},
		{"127.0.0.1", peerLoopback},
		{"127.255.0.1", peerLoopback},
		{"::1", peerLoopback},
		{"169.254.169.254", peerLinkLocal}, // cloud metadata
		{"fe80::1", peerLinkLocal},
		{"fe80::1%eth0", peerLinkLocal},
		{"0.0.0.0", peerUnspecified},
		{"0.1.2.3", peerUnspecified},
		{"::", peerUnspecified},
		{"224.0.0.1", peerMulticast},
		{"239.255.255.250", peerMulticast},
		{"ff02::1", peerMulticast},
		{"255.255.255.255", peerReserved},
		{"240.0.0.1", peerReserved},
		{"198.18.0.1", peerReserved},
		{"::10.1.2.3", peerReserved},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			got := p.classify(netip.MustParseAddr(tc.addr))
			if got != tc.want {
				t.Errorf("%s is %v, want %v", tc.addr, got, tc.want)
			}
			if got.relayed() != (tc.want == peerPublic || tc.want == peerAllowed) {
				t.Errorf("%s relayed = %v", tc.addr, got.relayed())
			}
		})
	}
	if c := p.classify(netip.Addr{}); c != peerUnknown || c.relayed() {
		t.Errorf("invalid address is %v", c)
	}
}

// The server's own addresses are refused on its relay ports and UDP
// listener port only; AllowedPeers lets them through too.
func TestIsLoop(t *testing.T) {
	cfg := Config{
		RelayIP:      "192.0.2.10",
		ExternalIP:   "203.0.114.10",
		Listen:       "203.0.114.11:3478",
		RelayPortMin: 40000,
		RelayPortMax: 49999,
		AllowedPeers: []netip.Prefix{netip.MustParsePrefix("203.0.114.11/32")},
	}
	p := newPeerPolicy(cfg, cfg.ownAddrs(), 3478)
	cases := []struct {
		ap   string
		want bool
	}{
		{"203.0.114.10:40000", true},
		{"203.0.114.10:49999", true},
		{"[::ffff:203.0.114.10]:45000", true},
		{"[64:ff9b::cb00:720a]:45000", true}, // through a NAT64 (RFC 6052)
		{"192.0.2.10:45000", true},
		{"203.0.114.10:3478", true},
		{"203.0.114.10:39999", false}, // the gateway's media, say
		{"203.0.114.10:50000", false},
		{"203.0.114.12:45000", false},
		{"203.0.114.11:45000", false}, // allowed
	}
	for _, tc := range cases {
		if got := p.isLoop(netip.MustParseAddrPort(tc.ap)); got != tc.want {
			t.Errorf("isLoop(%s) = %v, want %v", tc.ap, got, tc.want)
		}
	}
	all := Config{RelayIP: "0.0.0.0", ExternalIP: "203.0.114.10"}.ownAddrs()
	if len(all) < 2 || !slices.Contains(all, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("RelayIP 0.0.0.0: own addresses %v lack the host's", all)
	}
}

func TestLogRange(t *testing.T) {
	for addr, want := range map[string]string{
		"10.1.2.3":        "10.1.2.0/24",
		"::ffff:10.1.2.3": "10.1.2.0/24",
		"fd00:1:2:3:4::5": "fd00:1:2:3::/64",
	} {
		if got := logRange(netip.MustParseAddr(addr)).String(); got != want {
			t.Errorf("logRange(%s) = %s, want %s", addr, got, want)
		}
	}
}
