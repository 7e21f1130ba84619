package mediabridge

import (
	"errors"
	"time"
)

// DTMF travels three ways (DESIGN.md, DTMF): SIP INFO bodies (dtmf_info.go),
// RFC 4733 telephone-events (dtmf_rfc4733.go, dtmf_receiver.go) and in-band
// tones in G.711 (dtmf_tone.go, g711.go). All of them meet in DTMFDigit.

// DTMFDigit is one key press: its RFC 4733 §3.2 event code (0-9, * = 10,
// # = 11, A-D = 12-15, hook flash = 16) and how long the key was held.
type DTMFDigit struct {
	Event    uint8
	Duration time.Duration
}

var (
	// ErrNotDTMF means an INFO body is not a DTMF content type; the INFO
	// belongs to another package (or answers 415).
	ErrNotDTMF = errors.New("not a dtmf content type")
	// ErrBadDTMF means a DTMF INFO body names no known signal; the b2bua
	// answers 400.
	ErrBadDTMF = errors.New("bad dtmf body")

	errShortDTMFEvent = errors.New("telephone-event payload shorter than 4 bytes")
)

const (
	// dtmfFlash is hook flash: event 16 of RFC 2833 §3.10, left reserved
	// by RFC 4733 but still what PBXes send as "Signal=16".
	dtmfFlash = 16
	// maxDTMFEvent is the highest event we carry; RFC 4734 modem and fax
	// events above it are not DTMF.
	maxDTMFEvent = dtmfFlash

	// Durations of a key press. 40 ms is the shortest tone a Q.24 receiver
	// must take; 2 s bounds how long one INFO (a peer driving our
	// generator) can hold a tone; 100 ms is what browsers send by default.
	minDTMFDuration     = 40 * time.Millisecond
	maxDTMFDuration     = 2 * time.Second
	defaultDTMFDuration = 100 * time.Millisecond
	// dtmfGap is the pause between two generated digits, so that the
	// receiver (or a tone detector behind a transcoder) sees two presses.
	dtmfGap = 40 * time.Millisecond
)

// dtmfSignals are the INFO signal names of events 0-15, in event order.
const dtmfSignals = "0123456789*#ABCD"

// Signal is the dtmf-relay name of the digit: "0"-"9", "*", "#", "A"-"D",
// or "16" for hook flash; "" for an event that is not DTMF.
func (d DTMFDigit) Signal() string {
	switch {
	case d.Event < dtmfFlash:
		return dtmfSignals[d.Event : d.Event+1]
	case d.Event == dtmfFlash:
		return "16"
	}
	return ""
}

// dtmfSignalEvent reads a signal name: the dtmfSignals characters (a-d in
// either case), "!" (Asterisk's flash), or the event code in decimal
// ("10" for *, "16" for flash), as PBXes variously send them.
func dtmfSignalEvent(s []byte) (uint8, bool) {
	if len(s) == 1 {
		c := s[0]
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c == '*':
			return 10, true
		case c == '#':
			return 11, true
		case c >= 'A' && c <= 'D':
			return 12 + c - 'A', true
		case c >= 'a' && c <= 'd':
			return 12 + c - 'a', true
		case c == '!':
			return dtmfFlash, true
		}
		return 0, false
	}
	if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	ev := (s[0]-'0')*10 + s[1] - '0'
	return ev, ev <= maxDTMFEvent
}

// clampDTMFDuration bounds a duration to [minDTMFDuration,
// maxDTMFDuration]; zero or less means "not said" and becomes the default.
func clampDTMFDuration(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return defaultDTMFDuration
	case d < minDTMFDuration:
		return minDTMFDuration
	case d > maxDTMFDuration:
		return maxDTMFDuration
	}
	return d
}

// dtmfTicks is d in RTP timestamp units of clock.
func dtmfTicks(d time.Duration, clock uint32) uint32 {
	return uint32(uint64(d) * uint64(clock) / uint64(time.Second))
}

// dtmfTicksDuration is the inverse of dtmfTicks.
func dtmfTicksDuration(ticks uint64, clock uint32) time.Duration {
	if clock == 0 {
		return 0
	}
	return time.Duration(ticks * uint64(time.Second) / uint64(clock))
}
