package mediabridge

import "errors"

var (
	// ErrNoCommonCodec means the other side offered or answered no usable
	// audio codec (or no audio at all); the b2bua answers 488.
	ErrNoCommonCodec = errors.New("no common codec")
	// ErrBadSDP means the SDP could not be parsed; it is wrapped with detail.
	ErrBadSDP = errors.New("bad sdp")
	// ErrNoICETCP means a probe asked for the ICE-TCP candidate of an
	// engine without one (media.webrtc_tcp_port, edge.listen).
	ErrNoICETCP = errors.New("ice-tcp is off")

	errPortsExhausted = errors.New("no free rtp port pair")
	errSessionClosed  = errors.New("session closed")
	errWrongState     = errors.New("wrong offer/answer state")
	errFingerprint    = errors.New("dtls certificate does not match the sdp fingerprint")
	errNoFingerprint  = errors.New("no sha-256 fingerprint in sdp")
	errNoICE          = errors.New("no ice-ufrag/ice-pwd in sdp")
	errSRTPProfile    = errors.New("no srtp protection profile negotiated")
	errNoBrowserAddr  = errors.New("no browser address yet")
	errLoopClosed     = errors.New("media poll loop closed")
	errEngineClosed   = errors.New("media engine closed")
	errProbeTransport = errors.New("no candidate of that transport")
)
