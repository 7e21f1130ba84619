package natcheck

import (
	"net/netip"
	"time"
)

// Result is what Run found.
type Result struct {
	// Server is the STUN server asked; Local the address of the socket
	// that asked first, Mapped what the server saw of it (XOR-MAPPED-
	// ADDRESS); OtherAddress the server's second address (RFC 5780
	// OTHER-ADDRESS), zero when it gave none.
	Server       netip.AddrPort `json:"server"`
	Local        netip.AddrPort `json:"local"`
	Mapped       netip.AddrPort `json:"mapped,omitzero"`
	OtherAddress netip.AddrPort `json:"other_address,omitzero"`
	// UDPBlocked: no answer to a plain Binding request (RFC 5780 section
	// 4.2); nothing else is known then.
	UDPBlocked bool `json:"udp_blocked"`
	// BehindNAT: the mapped address is not the local one.
	BehindNAT   bool        `json:"behind_nat"`
	Mapping     Behavior    `json:"mapping"`
	Filtering   Behavior    `json:"filtering"`
	Hairpinning Hairpinning `json:"hairpinning"`
	// BindingLifetime is the longest idle time after which a mapping was
	// seen alive (a lower bound), BindingLifetimeDead the shortest after
	// which one was gone; zero when not measured or (Dead) when every
	// probe up to Options.LifetimeMax found the mapping alive.
	BindingLifetime     time.Duration `json:"-"`
	BindingLifetimeDead time.Duration `json:"-"`
	// Notes say what could not be determined, and why.
	Notes []Note `json:"notes,omitempty"`
}

// Note is one thing Run could not determine.
type Note struct {
	Test   string `json:"test"` // "mapping", "filtering", "hairpinning", "lifetime"
	Reason string `json:"reason"`
}

func (r *Result) note(test, reason string) {
	r.Notes = append(r.Notes, Note{Test: test, Reason: reason})
}

// Classic names the result in the terms of RFC 3489 section 5, which RFC
// 5780 section 1 retired as too coarse but which people still use.
func (r Result) Classic() string {
	switch {
	case r.UDPBlocked:
		return "UDP blocked"
	case !r.BehindNAT:
		switch r.Filtering {
		case EndpointIndependent:
			return "open internet"
		case AddressDependent, AddressAndPortDependent:
			return "symmetric UDP firewall"
		default:
			return "no NAT (filtering unknown)"
		}
	case r.Mapping == AddressDependent || r.Mapping == AddressAndPortDependent:
		return "symmetric"
	case r.Mapping == EndpointIndependent:
		switch r.Filtering {
		case EndpointIndependent:
			return "full cone"
		case AddressDependent:
			return "restricted cone"
		case AddressAndPortDependent:
			return "port-restricted cone"
		default:
			return "cone NAT (filtering unknown)"
		}
	default:
		return "NAT of unknown type"
	}
}

// Advice says in plain words what media needs here. With an
// endpoint-independent mapping the address a peer learns (by ICE) is the
// one the NAT uses toward it, so media goes direct once both sides send;
// with a mapping per destination it is not, and media needs a relay.
func (r Result) Advice() string {
	switch {
	case r.UDPBlocked:
		return "needs TURN over TCP or TLS (UDP blocked)"
	case !r.BehindNAT && r.Filtering == EndpointIndependent:
		return "direct media works"
	case r.Mapping == EndpointIndependent:
		return "direct media works (ICE: both sides send first)"
	case r.Mapping == AddressDependent || r.Mapping == AddressAndPortDependent:
		return "needs TURN over UDP (the NAT maps each destination apart)"
	default:
		return "could not tell: keep TURN available"
	}
}
