package natcheck

import "errors"

// Why Run cannot start.
var (
	errServer  = errors.New("bad STUN server address")
	errLocal   = errors.New("bad local address")
	errTimeout = errors.New("timeout must be positive")
	errMaximum = errors.New("lifetime maximum must be at least 1s")
)

// Why one test has no result.
var (
	errNoAnswer    = errors.New("no answer")
	errRefused     = errors.New("error response")
	errNoMapped    = errors.New("answer without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS")
	errWrongSource = errors.New("answer from an unexpected address")
)
