package democore

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned once Close has been called.
	ErrClosed = errors.New("democore: closed")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("democore: already started")
	// ErrNoListener is returned by Start when given neither UDP nor TCP.
	ErrNoListener = errors.New("democore: no listener")
	// ErrNotRegistered is returned by Call when the AoR has no binding.
	ErrNotRegistered = errors.New("democore: aor not registered")
	// ErrUnknownCall is returned for a Call-ID the core does not know.
	ErrUnknownCall = errors.New("democore: unknown call")
	// ErrNotAnswered is returned by HangUp/HangUpEcho before the call is answered.
	ErrNotAnswered = errors.New("democore: call not answered")
	// ErrAlreadyAnswered is returned by Cancel after a branch answered.
	ErrAlreadyAnswered = errors.New("democore: call already answered")
	// ErrCallEnded is returned when the call is already over.
	ErrCallEnded = errors.New("democore: call ended")
	// ErrBadSDP is returned for an offer or answer the core cannot use.
	ErrBadSDP = errors.New("democore: unusable sdp")
	// ErrBadRequest marks a request that gets 400.
	ErrBadRequest = errors.New("democore: bad request")
)

// StatusError is a final SIP status other than 2xx, as a typed error.
type StatusError struct {
	Status int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("democore: sip status %d %s", e.Status, e.Reason)
}
