package turnserver

import "errors"

// ErrConfig is a Config that cannot work; the wrapped text names the field.
var ErrConfig = errors.New("turnserver: invalid config")

// Why a credential is refused (auth.go).
var (
	errUnknownUser  = errors.New("unknown username")
	errWrongRealm   = errors.New("wrong realm")
	errRESTUsername = errors.New("username is not expiry:subject")
	errRESTExpired  = errors.New("credentials expired")
)

// Why a relay is not made (relay.go); pion answers all of them with 508
// Insufficient Capacity, the code of a failed relay allocation (a TCP
// relay asked for in an authenticated Allocate gets 442 from screen
// before).
var (
	errTCPRelay       = errors.New("tcp relays (RFC 6062) are not offered")
	errPortOutOfRange = errors.New("requested port outside the relay range")
	errQuota          = errors.New("allocation quota reached")
	errClosing        = errors.New("server closing")
)

// errBadFrame ends a stream connection whose bytes are not a STUN message
// or ChannelData frame that fits the read (stream.go).
var errBadFrame = errors.New("not a TURN frame")
