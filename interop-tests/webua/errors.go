package webua

import (
	"errors"
	"fmt"
)

var (
	// errClosed is returned once Close has been called or the WebSocket has gone.
	errClosed = errors.New("webua: closed")
	// errNoFinal is returned when the peer never sent a final response.
	errNoFinal = errors.New("webua: no final response")
	// errWrongDirection is returned when an outgoing-only or incoming-only
	// method is called on the other kind of call.
	errWrongDirection = errors.New("webua: wrong call direction")
	// errBadState is returned when a method does not fit the call's state.
	errBadState = errors.New("webua: call in wrong state")
	// errNoSDP is returned when an INVITE or its answer carries no SDP.
	errNoSDP = errors.New("webua: no SDP body")
	// errBadChallenge is returned for a 401/407 without a usable digest challenge.
	errBadChallenge = errors.New("webua: unusable digest challenge")
)

// StatusError is a non-2xx final response seen where a 2xx was required.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("webua: status %d %s", e.Code, e.Reason) }

// errNoSubprotocol is returned when the server did not accept the "sip" subprotocol (RFC 7118 §4).
var errNoSubprotocol = errors.New("webua: server did not select the sip subprotocol")

// HandshakeError is an upgrade the server refused with an HTTP status
// (401 for a bad token, 429 past a rate limit).
type HandshakeError struct {
	StatusCode int
	err        error
}

func (e *HandshakeError) Error() string { return fmt.Sprintf("%v: HTTP %d", e.err, e.StatusCode) }

func (e *HandshakeError) Unwrap() error { return e.err }
