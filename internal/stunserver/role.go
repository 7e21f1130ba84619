package stunserver

// role is one of the four transport addresses of an RFC 5780 server (RFC
// 5780 section 4.1: two IP addresses by two ports). Bit 1 set means the
// alternate IP, bit 0 the alternate port, so a CHANGE-REQUEST is an XOR.
type role uint8

const (
	rolePrimary role = 0 // listen IP, listen port
	roleAltPort role = 1 // listen IP, alternate port
	roleAltIP   role = 2 // alternate IP, listen port
	roleAltBoth role = 3 // alternate IP, alternate port
)

const numRoles = 4

// change is the role that answers a request received on r carrying
// CHANGE-REQUEST with the given flags (RFC 5780 section 7.2).
func (r role) change(ip, port bool) role {
	if ip {
		r ^= roleAltIP
	}
	if port {
		r ^= roleAltPort
	}
	return r
}

// other is the role named by OTHER-ADDRESS (and RFC 3489's
// CHANGED-ADDRESS) in an answer to a request received on r: both IP and
// port differ from where the request came in, whatever the request asked
// (RFC 5780 section 7.4).
func (r role) other() role { return r ^ roleAltBoth }

func (r role) String() string {
	switch r {
	case rolePrimary:
		return "primary"
	case roleAltPort:
		return "alt-port"
	case roleAltIP:
		return "alt-ip"
	case roleAltBoth:
		return "alt-ip-alt-port"
	default:
		return "unknown"
	}
}
