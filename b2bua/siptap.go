package b2bua

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/imsgate/imsgate/internal/siptap"
)

// CoreTapOwner tells which of sipgo's messages are this gateway's core leg
// (siptap.AttachCore). sipgo traces every SIP socket of the process, and a
// process may hold SIP peers of its own beside the gateway (the demo core,
// a test's core), so a message is the gateway's:
//   - on its SIP ports (sip.listen's UDP and TCP, sip.tls_listen);
//   - not when it goes to those ports from this host: that is a peer's
//     socket talking to the gateway;
//   - not on an upstream's own address: that is the peer itself;
//   - else yes: a connection the gateway opened from a port of the system's
//     choosing (TCP and TLS toward the core, by name or address).
func (g *Gateway) CoreTapOwner() siptap.CoreOwner {
	return func(local, remote, sipgoTransport string) (string, bool) {
		ours := func(port int) bool { return port == g.core.udpLocal.Port || (port != 0 && port == g.core.tlsPort) }
		lp, rp := portOf(local), portOf(remote)
		switch {
		case lp == g.core.udpLocal.Port:
			return sipgoTransport, true
		case lp != 0 && lp == g.core.tlsPort:
			return "TLS", true
		case ours(rp) && g.onThisHost(remote):
			return "", false
		}
		for _, up := range g.core.ups.list() {
			if up.hostport() == local {
				return "", false
			}
		}
		// sipgo names TLS connections TCP; toward a TLS core they are TLS.
		if sipgoTransport == "TCP" && g.core.transport == "tls" {
			return "TLS", true
		}
		return sipgoTransport, true
	}
}

// onThisHost tells whether hostport is a loopback address or the address
// the gateway's SIP socket is bound to.
func (g *Gateway) onThisHost(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	bound, _ := netip.AddrFromSlice(g.core.udpLocal.IP)
	return ip.IsLoopback() || ip == bound.Unmap()
}

func portOf(hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
