package mediabridge

import "errors"

var (
	// ErrNoCommonCodec means the other side offered or answered no usable
	// audio codec (or no audio at all); the b2bua answers 488.
	ErrNoCommonCodec = errors.New("no common codec")
	// ErrBadSDP means the SDP could not be parsed; it is wrapped with detail.
	ErrBadSDP = errors.New("bad sdp")

	errPortsExhausted = errors.New("no free rtp port pair")
	errSessionClosed  = errors.New("session closed")
	errWrongState     = errors.New("wrong offer/answer state")
	errGatherTimeout  = errors.New("ice gathering timed out")
	errNoAudioSection = errors.New("no audio section in local description")
)
