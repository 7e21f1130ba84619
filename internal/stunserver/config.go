package stunserver

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Config says where the server listens.
type Config struct {
	// Listen is host:port for UDP and TCP alike. The host is an IP
	// address, or empty for every address (then without RFC 5780). Port 0
	// takes a free port (tests).
	Listen string
	// AlternateIP is the server's second IP address; "" serves plain
	// STUN without RFC 5780. It must be of the Listen IP's family.
	AlternateIP string
	// AlternatePort is the second port; 0 means the listen port + 1. Only
	// with AlternateIP.
	AlternatePort int
	// Software is the SOFTWARE attribute of every answer; "" for none.
	Software string

	// tcpIdle closes a TCP connection that sends no message for that
	// long; 0 is defaultTCPIdle. Tests shorten it.
	tcpIdle time.Duration
}

// plan is a checked Config.
type plan struct {
	ip      netip.Addr // listen IP; unspecified for every address
	port    uint16     // 0: choose
	altIP   netip.Addr // invalid: no RFC 5780
	altPort uint16     // 0: port + 1
	// network is "4", "6" or "" (dual stack for an empty or "::" host),
	// appended to "udp" and "tcp".
	network  string
	software string
	tcpIdle  time.Duration
}

func (c Config) plan() (plan, error) {
	host, portText, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return plan{}, fmt.Errorf("%w %q: %v", errListen, c.Listen, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return plan{}, fmt.Errorf("%w %q: port %q is not 0-65535", errListen, c.Listen, portText)
	}
	p := plan{port: uint16(port), software: c.Software, tcpIdle: c.tcpIdle}
	if p.tcpIdle <= 0 {
		p.tcpIdle = defaultTCPIdle
	}
	switch host {
	case "":
		p.ip = netip.IPv6Unspecified()
	default:
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return plan{}, fmt.Errorf("%w %q: host %q is not an IP address", errListen, c.Listen, host)
		}
		p.ip = ip.Unmap()
		switch {
		case p.ip.Is4():
			p.network = "4"
		case !p.ip.IsUnspecified():
			p.network = "6"
		}
	}
	if len(c.Software) > 763 {
		return plan{}, errSoftware
	}
	if c.AlternateIP == "" {
		if c.AlternatePort != 0 {
			return plan{}, fmt.Errorf("%w: %d given without alternate_ip", errAlternatePort, c.AlternatePort)
		}
		return p, nil
	}
	if p.ip.IsUnspecified() {
		return plan{}, fmt.Errorf("%w: listen %q", errNeedConcrete, c.Listen)
	}
	alt, err := netip.ParseAddr(c.AlternateIP)
	if err != nil {
		return plan{}, fmt.Errorf("%w %q: not an IP address", errAlternateIP, c.AlternateIP)
	}
	alt = alt.Unmap()
	switch {
	case alt.IsUnspecified():
		return plan{}, fmt.Errorf("%w %q: must be a concrete address", errAlternateIP, c.AlternateIP)
	case alt.Is4() != p.ip.Is4():
		return plan{}, fmt.Errorf("%w %q: not of the listen address's family (%s)", errAlternateIP, c.AlternateIP, p.ip)
	case alt == p.ip:
		return plan{}, fmt.Errorf("%w %q: same as the listen address", errAlternateIP, c.AlternateIP)
	}
	p.altIP = alt
	switch {
	case c.AlternatePort < 0 || c.AlternatePort > 65535:
		return plan{}, fmt.Errorf("%w %d: not 0-65535", errAlternatePort, c.AlternatePort)
	case c.AlternatePort != 0 && c.AlternatePort == int(p.port):
		return plan{}, fmt.Errorf("%w %d: same as the listen port", errAlternatePort, c.AlternatePort)
	case c.AlternatePort == 0 && p.port == 65535:
		return plan{}, fmt.Errorf("%w: listen port 65535 has no port + 1; set alternate_port", errAlternatePort)
	}
	p.altPort = uint16(c.AlternatePort)
	return p, nil
}

// rfc5780 says whether the plan has an alternate address.
func (p plan) rfc5780() bool { return p.altIP.IsValid() }

// addrs are the four addresses for a primary port; roles not served are
// zero.
func (p plan) addrs(port uint16) [numRoles]netip.AddrPort {
	var a [numRoles]netip.AddrPort
	a[rolePrimary] = netip.AddrPortFrom(p.ip, port)
	if !p.rfc5780() {
		return a
	}
	alt := p.altPort
	if alt == 0 {
		alt = port + 1
	}
	a[roleAltPort] = netip.AddrPortFrom(p.ip, alt)
	a[roleAltIP] = netip.AddrPortFrom(p.altIP, port)
	a[roleAltBoth] = netip.AddrPortFrom(p.altIP, alt)
	return a
}
