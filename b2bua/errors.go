package b2bua

import (
	"errors"
	"fmt"
)

var (
	// errNoBinding: a request for a Contact the gateway does not know.
	errNoBinding = errors.New("no binding")
	// errFlowGone: the browser's WebSocket closed.
	errFlowGone = errors.New("websocket flow closed")
	// errTimeout: the far side did not answer in time.
	errTimeout = errors.New("no answer in time")
	// errDraining: the gateway refuses new work while it drains.
	errDraining = errors.New("gateway draining")
	// errClosed: the SIP side closed under a request.
	errClosed = errors.New("sip side closed")
)

// StatusError carries a SIP status up to the leg edge, where it becomes a
// response (STYLE: a status travels as a typed error).
type StatusError struct {
	Code   int
	Reason string
	Err    error
}

// SIPStatus is the status the sender of the failed request gets.
func (e *StatusError) SIPStatus() (int, string) { return e.Code, e.Reason }

func (e *StatusError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Reason, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Reason)
}

func (e *StatusError) Unwrap() error { return e.Err }

func statusErr(code int, reason string, err error) *StatusError {
	return &StatusError{Code: code, Reason: reason, Err: err}
}

// statusOf maps any error to the SIP status the caller should see.
func statusOf(err error) *StatusError {
	var se *StatusError
	if errors.As(err, &se) {
		return se
	}
	switch {
	case errors.Is(err, errNoBinding):
		return statusErr(404, "Not Found", err)
	case errors.Is(err, errFlowGone):
		return statusErr(480, "Temporarily Unavailable", err)
	case errors.Is(err, errTimeout):
		return statusErr(408, "Request Timeout", err)
	case errors.Is(err, errDraining):
		return statusErr(503, "Service Unavailable", err)
	}
	return statusErr(500, "Server Internal Error", err)
}
