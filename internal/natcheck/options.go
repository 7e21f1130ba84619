package natcheck

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Defaults of Options and of the command line.
const (
	DefaultServer = "127.0.0.1:3478"
	// DefaultTimeout is the wait for one answer, retransmissions
	// included. A test that expects no answer (a filtering NAT) waits
	// this long, so it is short next to RFC 8489's 39.5 s.
	DefaultTimeout = 3 * time.Second
	// DefaultLifetimeMax is RFC 4787 REQ-5's shortest allowed UDP mapping
	// timer: a mapping alive that long is as good as required.
	DefaultLifetimeMax = 2 * time.Minute
)

// Options say what to ask and how long to wait.
type Options struct {
	// Server is the STUN server's host:port; for mapping and filtering
	// it must support RFC 5780 (give OTHER-ADDRESS).
	Server string
	// Local is an optional ip or ip:port to send from; by default the
	// address the system routes toward the server, with any port.
	Local string
	// Lifetime runs the binding lifetime test (RFC 5780 section 4.6),
	// which waits up to LifetimeMax per probe and so takes minutes.
	Lifetime    bool
	LifetimeMax time.Duration
	// Timeout is the wait for one answer, retransmissions included.
	Timeout time.Duration
}

// normalize fills in defaults and checks the syntax of the addresses, so
// that a bad option is told apart from a failed run.
func (o Options) normalize() (Options, error) {
	if o.Server == "" {
		o.Server = DefaultServer
	}
	if _, port, err := net.SplitHostPort(o.Server); err != nil {
		return o, fmt.Errorf("%w %q: %v", errServer, o.Server, err)
	} else if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return o, fmt.Errorf("%w %q: port %q", errServer, o.Server, port)
	}
	if o.Local != "" {
		if _, err := parseLocal(o.Local); err != nil {
			return o, err
		}
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return o, fmt.Errorf("%w: %s", errTimeout, o.Timeout)
	}
	if o.LifetimeMax == 0 {
		o.LifetimeMax = DefaultLifetimeMax
	}
	if o.Lifetime && o.LifetimeMax < time.Second {
		return o, fmt.Errorf("%w: %s", errMaximum, o.LifetimeMax)
	}
	return o, nil
}

func parseLocal(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return unmap(ap), nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), 0), nil
	}
	return netip.AddrPort{}, fmt.Errorf("%w %q: want ip or ip:port", errLocal, s)
}

// resolve finds the server's address, by name if need be.
func resolve(ctx context.Context, server string) (netip.AddrPort, error) {
	host, portText, _ := net.SplitHostPort(server)
	port, _ := strconv.ParseUint(portText, 10, 16)
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, errServer)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(port)), nil
}

// localFor is the address to send from: Local if given, else the one the
// system routes toward server. A concrete IP matters: "behind NAT" is the
// mapped address differing from it, which a wildcard cannot tell.
func localFor(local string, server netip.AddrPort) (netip.AddrPort, error) {
	if local != "" {
		ap, err := parseLocal(local)
		if err != nil {
			return ap, err
		}
		if ap.Addr().Is4() != server.Addr().Is4() {
			return ap, fmt.Errorf("%w %q: not of the server's address family", errLocal, local)
		}
		return ap, nil
	}
	// Connecting a UDP socket sends nothing; it only asks the routing
	// table for the source address.
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("route to %s: %w", server, err)
	}
	defer c.Close()
	return netip.AddrPortFrom(unmap(c.LocalAddr().(*net.UDPAddr).AddrPort()).Addr(), 0), nil
}
