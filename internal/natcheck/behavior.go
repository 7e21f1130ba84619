package natcheck

// Behavior is how a NAT maps (RFC 4787 section 4.1) or filters (section
// 5) UDP, as RFC 5780 sections 4.3 and 4.4 find it out.
type Behavior int

const (
	// BehaviorUnknown: not determined; Result.Notes says why.
	BehaviorUnknown Behavior = iota
	// EndpointIndependent: one mapping (or one open door) for every
	// destination.
	EndpointIndependent
	// AddressDependent: per destination IP address.
	AddressDependent
	// AddressAndPortDependent: per destination IP address and port.
	AddressAndPortDependent
)

func (b Behavior) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	default:
		return "unknown"
	}
}

// MarshalText writes the String form, for -json.
func (b Behavior) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// Hairpinning is whether the NAT passes a datagram from inside to its own
// mapped address back inside (RFC 4787 section 6, RFC 5780 section 4.7).
type Hairpinning int

const (
	// HairpinningUnknown: not determined.
	HairpinningUnknown Hairpinning = iota
	// HairpinningYes: a datagram to the mapped address came back in.
	HairpinningYes
	// HairpinningNo: it did not.
	HairpinningNo
)

func (h Hairpinning) String() string {
	switch h {
	case HairpinningYes:
		return "yes"
	case HairpinningNo:
		return "no"
	default:
		return "unknown"
	}
}

// MarshalText writes the String form, for -json.
func (h Hairpinning) MarshalText() ([]byte, error) { return []byte(h.String()), nil }
