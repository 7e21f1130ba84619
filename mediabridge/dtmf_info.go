package mediabridge

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// DTMFRelayType is the INFO content type the gateway sends: the de
	// facto "Signal=5\r\nDuration=160\r\n" body (Cisco, Asterisk, SIP.js).
	DTMFRelayType = "application/dtmf-relay"
	// dtmfType is the older body holding only the digit.
	dtmfType = "application/dtmf"
)

// ParseDTMFInfo reads the body of a SIP INFO of type application/dtmf-relay
// or application/dtmf (parameters and case of the type are ignored). Keys
// are case-insensitive, lines may end in LF or CRLF and values may be
// padded with spaces. A missing, zero or unreadable Duration is the 100 ms
// default; any other is clamped to [40 ms, 2 s]. Another content type is
// ErrNotDTMF; a missing or unknown signal is ErrBadDTMF.
func ParseDTMFInfo(contentType string, body []byte) (DTMFDigit, error) {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.TrimSpace(mediaType)
	switch {
	case strings.EqualFold(mediaType, DTMFRelayType):
		return parseDTMFRelay(body)
	case strings.EqualFold(mediaType, dtmfType):
		sig := bytes.TrimSpace(body)
		ev, ok := dtmfSignalEvent(sig)
		if !ok {
			return DTMFDigit{}, fmt.Errorf("%w: signal %q", ErrBadDTMF, clipDTMFText(sig))
		}
		return DTMFDigit{Event: ev, Duration: defaultDTMFDuration}, nil
	}
	return DTMFDigit{}, fmt.Errorf("%w: %q", ErrNotDTMF, clipDTMFText([]byte(mediaType)))
}

// parseDTMFRelay reads key=value lines; the first Signal and the first
// Duration count, other keys are ignored.
func parseDTMFRelay(body []byte) (DTMFDigit, error) {
	d := DTMFDigit{Duration: defaultDTMFDuration}
	var haveSignal, haveDuration bool
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		key, val, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			continue
		}
		key, val = bytes.TrimSpace(key), bytes.TrimSpace(val)
		switch {
		case !haveSignal && bytes.EqualFold(key, []byte("signal")):
			ev, ok := dtmfSignalEvent(val)
			if !ok {
				return DTMFDigit{}, fmt.Errorf("%w: signal %q", ErrBadDTMF, clipDTMFText(val))
			}
			d.Event, haveSignal = ev, true
		case !haveDuration && bytes.EqualFold(key, []byte("duration")):
			d.Duration, haveDuration = parseDTMFMillis(val), true
		}
	}
	if !haveSignal {
		return DTMFDigit{}, fmt.Errorf("%w: no signal", ErrBadDTMF)
	}
	return d, nil
}

// parseDTMFMillis reads a Duration value in milliseconds, clamped; any
// text that is not a plain decimal number gives the default.
func parseDTMFMillis(v []byte) time.Duration {
	if len(v) == 0 {
		return defaultDTMFDuration
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return defaultDTMFDuration
		}
		if ms < int64(maxDTMFDuration/time.Millisecond) {
			ms = ms*10 + int64(c-'0') // saturates past the clamp, never overflows
		}
	}
	return clampDTMFDuration(time.Duration(ms) * time.Millisecond)
}

// InfoBody is the application/dtmf-relay body for the digit, with its
// duration clamped as ParseDTMFInfo clamps it; nil for an event that is
// not DTMF.
func (d DTMFDigit) InfoBody() []byte {
	sig := d.Signal()
	if sig == "" {
		return nil
	}
	b := make([]byte, 0, len("Signal=16\r\nDuration=2000\r\n"))
	b = append(b, "Signal="...)
	b = append(b, sig...)
	b = append(b, "\r\nDuration="...)
	b = strconv.AppendInt(b, clampDTMFDuration(d.Duration).Milliseconds(), 10)
	return append(b, "\r\n"...)
}

// clipDTMFText shortens peer text quoted in an error, so a huge body does not
// become a huge log line.
func clipDTMFText(b []byte) []byte {
	const limit = 32
	if len(b) > limit {
		return b[:limit]
	}
	return b
}
