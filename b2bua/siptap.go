package b2bua

import (
	"net"
	"strconv"
	"strings"

	"github.com/imsgate/imsgate/internal/siptap"
)

// CoreTapOwner tells which of sipgo's messages are this gateway's core leg
// (siptap.AttachCore): those on its SIP ports (sip.listen's UDP and TCP,
// sip.tls_listen), and those on connections it opened to an upstream. A
// SIP peer in the same process (the demo core, a test's) is neither.
func (g *Gateway) CoreTapOwner() siptap.CoreOwner {
	return func(local, remote, sipgoTransport string) (string, bool) {
		lp := portOf(local)
		switch {
		case lp == g.core.udpLocal.Port:
			return sipgoTransport, true
		case lp != 0 && lp == g.core.tlsPort:
			return "TLS", true
		}
		for _, up := range g.core.ups.list() {
			if net.JoinHostPort(strings.Trim(up.proxy.Host, "[]"), strconv.Itoa(up.proxy.Port)) == remote {
				if strings.EqualFold(up.proxy.Transport, "tls") {
					return "TLS", true
				}
				return sipgoTransport, true
			}
		}
		return "", false
	}
}

func portOf(hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
