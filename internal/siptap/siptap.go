// Package siptap is where every SIP message the gateway sends or receives,
// on either leg, is seen once as it went on the wire, with the addresses it
// really went between: the per-leg message counters, the HEP export and the
// call timelines read it there. The WebSocket leg is tapped by sipws as
// frames are handled and written; the core leg through sipgo's trace hook
// (core.go).
package siptap

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Leg is the side of the gateway a message went on.
type Leg uint8

const (
	LegWeb  Leg = iota + 1 // SIP over WebSocket, to and from browsers
	LegCore                // SIP over UDP, TCP or TLS, to and from the core
)

func (l Leg) String() string {
	switch l {
	case LegWeb:
		return "web"
	case LegCore:
		return "core"
	}
	return "unknown"
}

// Direction is whether the gateway received or sent a message.
type Direction uint8

const (
	In  Direction = iota + 1 // received by the gateway
	Out                      // sent by the gateway
)

func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Message is one SIP message on the wire.
type Message struct {
	At        time.Time
	Leg       Leg
	Dir       Direction
	Transport string // UDP, TCP, TLS, WS or WSS
	Local     netip.AddrPort
	Remote    netip.AddrPort
	// Raw is the message as it went; sinks read it during the call only
	// and copy what they keep.
	Raw []byte
	// Head is Raw's first line, Call-ID and CSeq method, read once by Emit
	// for every sink; HasHead is false when Raw is no SIP message.
	Head    Head
	HasHead bool
}

// Head is what the counters and the timeline need of a message, read
// without a full parse.
type Head struct {
	Method string // a request's method, or a response's CSeq method
	Status int    // a response's status code; 0 for a request
	CallID string
	First  string // the first line
}

// ParseHead reads the first line, Call-ID and CSeq of raw; false when the
// first line is neither a request nor a response line.
func ParseHead(raw []byte) (Head, bool) {
	var h Head
	line, rest, _ := bytes.Cut(raw, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	h.First = string(line)
	if status, ok := bytes.CutPrefix(line, []byte("SIP/2.0 ")); ok {
		if len(status) < 3 {
			return Head{}, false
		}
		code, err := strconv.Atoi(string(status[:3]))
		if err != nil || code < 100 || code > 699 {
			return Head{}, false
		}
		h.Status = code
	} else {
		method, tail, ok := bytes.Cut(line, []byte(" "))
		if !ok || len(method) == 0 || !bytes.HasSuffix(tail, []byte(" SIP/2.0")) {
			return Head{}, false
		}
		h.Method = string(method)
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break // the body
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Call-ID")) || bytes.EqualFold(name, []byte("i")):
			h.CallID = string(value)
		case bytes.EqualFold(name, []byte("CSeq")) && h.Status != 0:
			if _, m, ok := bytes.Cut(value, []byte(" ")); ok {
				h.Method = string(bytes.TrimSpace(m))
			}
		}
	}
	return h, true
}

// Sink hears every message. It is called on the goroutine that read or
// wrote the message and must not block.
type Sink interface {
	SIPMessage(m *Message)
}

// Tap hands each message to its sinks. The zero of *Tap (nil) taps nothing.
type Tap struct {
	sinks []Sink
}

// New is a tap with sinks; nil when there are none, so callers skip the
// work.
func New(sinks ...Sink) *Tap {
	var kept []Sink
	for _, s := range sinks {
		if s != nil {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return &Tap{sinks: kept}
}

// Emit reads m's head and hands m to every sink.
func (t *Tap) Emit(m *Message) {
	if t == nil {
		return
	}
	m.Head, m.HasHead = ParseHead(m.Raw)
	for _, s := range t.sinks {
		s.SIPMessage(m)
	}
}

// NetAddrPort is a net.Addr's address and port; the zero value when it has
// none.
func NetAddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	return AddrPort(a.String())
}

// AddrPort reads a "host:port"'s address; the zero value when it has none.
func AddrPort(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
