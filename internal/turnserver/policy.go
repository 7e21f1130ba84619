package turnserver

import (
	"net/netip"
)

// peerClass is what a peer address is, as far as relaying goes.
type peerClass uint8

const (
	peerUnknown     peerClass = iota
	peerPublic                // globally reachable: relayed
	peerAllowed               // inside Config.AllowedPeers: relayed
	peerOwn                   // the server's own relay or listener port (isLoop)
	peerPrivate               // RFC 1918, fc00::/7 (RFC 4193), site-local, NAT64 local-use
	peerShared                // 100.64.0.0/10, carrier-grade NAT (RFC 6598)
	peerLoopback              // 127.0.0.0/8, ::1
	peerLinkLocal             // 169.254.0.0/16, fe80::/10
	peerUnspecified           // 0.0.0.0/8 ("this network", RFC 791), ::
	peerMulticast             // 224.0.0.0/4, ff00::/8
	peerReserved              // not forwardable or not global in RFC 6890's registry
)

func (c peerClass) String() string {
	switch c {
	case peerPublic:
		return "public"
	case peerAllowed:
		return "allowed"
	case peerOwn:
		return "own"
	case peerPrivate:
		return "private"
	case peerShared:
		return "shared"
	case peerLoopback:
		return "loopback"
	case peerLinkLocal:
		return "link-local"
	case peerUnspecified:
		return "unspecified"
	case peerMulticast:
		return "multicast"
	case peerReserved:
		return "reserved"
	}
	return "unknown"
}

// relayed says whether a relay may reach a peer of class c.
func (c peerClass) relayed() bool { return c == peerPublic || c == peerAllowed }

// specialRanges are the networks a relay does not reach by default: without
// the refusal a TURN server is an open proxy into the operator's networks
// and the host itself. First match wins.
var specialRanges = []struct {
	prefix netip.Prefix
	class  peerClass
}{
	{netip.MustParsePrefix("0.0.0.0/8"), peerUnspecified},
	{netip.MustParsePrefix("10.0.0.0/8"), peerPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), peerShared},
	{netip.MustParsePrefix("127.0.0.0/8"), peerLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), peerLinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), peerPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), peerReserved}, // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), peerReserved}, // TEST-NET-1
	{netip.MustParsePrefix("192.168.0.0/16"), peerPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), peerReserved},   // benchmarking
	{netip.MustParsePrefix("198.51.100.0/24"), peerReserved}, // TEST-NET-2
	{netip.MustParsePrefix("203.0.113.0/24"), peerReserved},  // TEST-NET-3
	{netip.MustParsePrefix("224.0.0.0/4"), peerMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), peerReserved}, // and the broadcast address

	{netip.MustParsePrefix("::/128"), peerUnspecified},
	{netip.MustParsePrefix("::1/128"), peerLoopback},
	{netip.MustParsePrefix("::/96"), peerReserved},         // IPv4-compatible, deprecated (RFC 4291)
	{netip.MustParsePrefix("64:ff9b:1::/48"), peerPrivate}, // local-use NAT64 (RFC 8215)
	{netip.MustParsePrefix("100::/64"), peerReserved},      // discard-only (RFC 6666)
	{netip.MustParsePrefix("2001:db8::/32"), peerReserved}, // documentation
	{netip.MustParsePrefix("fc00::/7"), peerPrivate},       // unique local (RFC 4193)
	{netip.MustParsePrefix("fe80::/10"), peerLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), peerPrivate}, // site-local, deprecated (RFC 3879)
	{netip.MustParsePrefix("ff00::/8"), peerMulticast},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): behind it is the IPv4
// address in the last 32 bits, which a NAT64 on the relay's path would
// reach; it is judged as that address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// peerPolicy decides which peers relays may reach (RFC 8656 §10.2 and
// §12.2 let a server refuse a peer address with 403).
type peerPolicy struct {
	allowed []netip.Prefix

	// A peer at one of own's addresses, on a relay port or the UDP
	// listener's, is the server itself: a loop that multiplies one
	// client's datagrams (RFC 8656's security considerations). Other ports
	// of the same address are not: the gateway's media may be there.
	own                []netip.Addr
	relayMin, relayMax uint16
	listenPort         uint16 // 0: no UDP listener
}

func newPeerPolicy(cfg Config, own []netip.Addr, listenPort uint16) *peerPolicy {
	p := &peerPolicy{
		own:        own,
		relayMin:   uint16(cfg.RelayPortMin), //nolint:gosec // validated 1..65535
		relayMax:   uint16(cfg.RelayPortMax), //nolint:gosec // validated 1..65535
		listenPort: listenPort,
	}
	for _, a := range cfg.AllowedPeers {
		p.allowed = append(p.allowed, unmapPrefix(a))
	}
	return p
}

// classify says what ip is; AllowedPeers comes first, so an operator can
// let relays reach a private media server or, in tests, loopback.
func (p *peerPolicy) classify(ip netip.Addr) peerClass {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return peerUnknown
	}
	if p.isAllowed(ip) {
		return peerAllowed
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		return p.classify(netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(ip) {
			return r.class
		}
	}
	return peerPublic
}

func (p *peerPolicy) isAllowed(ip netip.Addr) bool {
	for _, a := range p.allowed {
		if a.Contains(ip) {
			return true
		}
	}
	return false
}

// isLoop says whether a datagram to ap would come back to the server: its
// address is the server's and its port a relay's or the UDP listener's.
// A permission is for an address only (RFC 8656 §9), so this is checked
// where the port is known: ChannelBind (screen) and every datagram a relay
// sends (relayConn). AllowedPeers overrides it, as it does classify.
func (p *peerPolicy) isLoop(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	if nat64.Contains(ip) {
		// A NAT64 on the way would bring it back to the embedded address.
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	own := false
	for _, o := range p.own {
		if o == ip {
			own = true
			break
		}
	}
	if !own || p.isAllowed(ip) {
		return false
	}
	port := ap.Port()
	return (port >= p.relayMin && port <= p.relayMax) || (port != 0 && port == p.listenPort)
}

// unmapPrefix turns ::ffff:a.b.c.d/n+96 into a.b.c.d/n, the form classify
// compares against.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if !a.Is4In6() {
		return p.Masked()
	}
	bits := p.Bits() - 96
	if bits < 0 {
		bits = 0
	}
	return netip.PrefixFrom(a.Unmap(), bits).Masked()
}

// logRange is the network a refusal is logged under, so a client scanning
// a subnet yields one line, not one per address.
func logRange(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}
