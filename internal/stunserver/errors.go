package stunserver

import "errors"

// Why New refuses a Config.
var (
	errListen        = errors.New("bad listen address")
	errNeedConcrete  = errors.New("listen host must be a concrete IP address when alternate_ip is set (RFC 5780 names the server's addresses in OTHER-ADDRESS and RESPONSE-ORIGIN)")
	errAlternateIP   = errors.New("bad alternate_ip")
	errAlternatePort = errors.New("bad alternate_port")
	errSoftware      = errors.New("software longer than 763 bytes (RFC 8489 section 14.14)")
	errNoPortPair    = errors.New("no free pair of primary and alternate ports")
)

// Why an attribute codec fails.
var (
	errAttrLength = errors.New("attribute of wrong length")
	errPadding    = errors.New("PADDING length out of range")
)

// Why a packet is dropped without an answer (RFC 8489 section 6.3: a
// message that fails the basic checks is silently discarded).
var (
	errNotSTUN      = errors.New("not a STUN message")
	errLength       = errors.New("STUN length does not match the packet")
	errDecode       = errors.New("malformed STUN attributes")
	errFingerprint  = errors.New("bad FINGERPRINT")
	errNotRequest   = errors.New("not a request")
	errMethod       = errors.New("method other than Binding")
	errFrameTooLong = errors.New("STUN message over the TCP frame limit")
	errTooManyConns = errors.New("too many TCP connections")
)

// Why a request gets an error response.
var (
	errUnknownAttrs        = errors.New("unknown comprehension-required attributes")
	errChangeNoAlternate   = errors.New("CHANGE-REQUEST without an alternate address")
	errChangeOverTCP       = errors.New("CHANGE-REQUEST over TCP")
	errResponsePortOverTCP = errors.New("RESPONSE-PORT over TCP")
	errResponsePortZero    = errors.New("RESPONSE-PORT 0")
	errPaddingAndPort      = errors.New("PADDING with RESPONSE-PORT")
	errBadAttr             = errors.New("malformed attribute")
)
