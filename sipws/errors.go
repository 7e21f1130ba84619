package sipws

import "errors"

var (
	// ErrClosed is returned when writing to a connection that is closed or closing.
	ErrClosed = errors.New("sipws: connection closed")
	// ErrSendQueueFull is returned when the peer reads too slowly; the
	// connection is closed with 1008.
	ErrSendQueueFull = errors.New("sipws: send queue full")

	errNilHandler    = errors.New("nil handler")
	errBadConfig     = errors.New("bad ws config")
	errMissingHeader = errors.New("missing mandatory header")
	errCSeqMismatch  = errors.New("CSeq method does not match request method")
	errRepeated      = errors.New("header field allowed once appears again")
	errSIPVersion    = errors.New("SIP version not supported")
	errTooManyFields = errors.New("too many header fields")
	errSDPTooLarge   = errors.New("SDP body too large")
	errRequestRate   = errors.New("request rate exceeded")
	errShuttingDown  = errors.New("server shutting down")
	errNilMessage    = errors.New("nil SIP message")
	errNoHijack      = errors.New("response writer cannot be hijacked")
	errNoTLS         = errors.New("no ws.tls_cert and ws.tls_key configured")
)
