package load

import "errors"

var (
	// ErrBadFlag is returned for an unusable option value.
	ErrBadFlag = errors.New("load: bad option")
	// ErrNoProcess is returned when a pid to measure does not exist.
	ErrNoProcess = errors.New("load: no such process")
	// ErrBadResult is returned when a result file cannot be compared.
	ErrBadResult = errors.New("load: unusable result")
)

var (
	// errEndedEarly is a call that ended before its hold was over.
	errEndedEarly = errors.New("call ended early")
	// errNoEcho is a call during which none of our probes came back.
	errNoEcho = errors.New("no echoed packet")
)
