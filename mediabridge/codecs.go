package mediabridge

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// codec is one audio payload format of an m-line (RFC 4566 §6 rtpmap/fmtp).
type codec struct {
	name     string // canonical case, as in supportedCodecs
	clock    uint32
	channels uint16 // 0 when the rtpmap names none
	pt       uint8
	fmtp     string
}

const telephoneEvent = "telephone-event"

// dtmfEvents is the RFC 4733 §7.1.1 event range we offer: digits, * # A-D, flash.
const dtmfEvents = "0-16"

// supportedCodecs are the formats the bridge can carry, with the payload
// types the WebRTC side uses when the gateway offers (Chrome's numbers, so a
// Chrome offer maps one to one).
var supportedCodecs = []codec{
	{name: "opus", clock: 48000, channels: 2, pt: 111, fmtp: "minptime=10;useinbandfec=1"},
	{name: "G722", clock: 8000, pt: 9},
	{name: "PCMU", clock: 8000, pt: 0},
	{name: "PCMA", clock: 8000, pt: 8},
	{name: telephoneEvent, clock: 48000, pt: 110, fmtp: dtmfEvents},
	{name: telephoneEvent, clock: 8000, pt: 126, fmtp: dtmfEvents},
}

// staticPayloadTypes are the RFC 3551 §6 types an m-line may use without rtpmap.
var staticPayloadTypes = map[uint8]codec{
	0: {name: "PCMU", clock: 8000, pt: 0},
	8: {name: "PCMA", clock: 8000, pt: 8},
	9: {name: "G722", clock: 8000, pt: 9},
}

func (c codec) same(o codec) bool {
	return strings.EqualFold(c.name, o.name) && c.clock == o.clock
}

func (c codec) isDTMF() bool { return c.name == telephoneEvent }

// none is the missing side of a pair only one leg has (webEvents).
func (c codec) none() bool { return c.name == "" }

// rtpmap is the value of a=rtpmap without the "rtpmap:" key.
func (c codec) rtpmap() string {
	s := fmt.Sprintf("%d %s/%d", c.pt, c.name, c.clock)
	if c.channels > 1 {
		s += "/" + strconv.Itoa(int(c.channels))
	}
	return s
}

// supported returns the canonical entry for c, if the bridge carries it.
func supported(c codec) (codec, bool) {
	for _, s := range supportedCodecs {
		if s.same(c) {
			return s, true
		}
	}
	return codec{}, false
}

// allowedSet is the lowercased set of cfg.Codecs names.
type allowedSet map[string]bool

func newAllowedSet(names []string) allowedSet {
	set := make(allowedSet, len(names))
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	return set
}

func (a allowedSet) has(c codec) bool { return a[strings.ToLower(c.name)] }

// hasAudio tells whether the set allows a codec that carries audio.
func (a allowedSet) hasAudio() bool {
	for _, c := range supportedCodecs {
		if !c.isDTMF() && a.has(c) {
			return true
		}
	}
	return false
}

// parseCodecs reads the payload formats of md in m-line order. Formats the
// bridge does not carry (red, CN, video...) are left out.
func parseCodecs(md *sdp.MediaDescription) []codec {
	rtpmaps := map[uint8]string{}
	fmtps := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" && a.Key != "fmtp" {
			continue
		}
		ptText, rest, ok := strings.Cut(a.Value, " ")
		pt, err := strconv.ParseUint(ptText, 10, 7)
		if !ok || err != nil {
			continue
		}
		if a.Key == "rtpmap" {
			rtpmaps[uint8(pt)] = strings.TrimSpace(rest)
		} else {
			fmtps[uint8(pt)] = strings.TrimSpace(rest)
		}
	}
	var out []codec
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		c, ok := parseRTPMap(uint8(pt), rtpmaps[uint8(pt)])
		if !ok {
			continue
		}
		canon, ok := supported(c)
		if !ok {
			continue
		}
		c.name = canon.name
		c.fmtp = fmtps[c.pt]
		if c.channels == 0 {
			c.channels = canon.channels
		}
		out = append(out, c)
	}
	return out
}

// parseRTPMap reads "name/clock[/channels]"; an empty value falls back to
// the static payload types.
func parseRTPMap(pt uint8, value string) (codec, bool) {
	if value == "" {
		c, ok := staticPayloadTypes[pt]
		return c, ok
	}
	parts := strings.Split(value, "/")
	if len(parts) < 2 {
		return codec{}, false
	}
	clock, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return codec{}, false
	}
	c := codec{name: parts[0], clock: uint32(clock), pt: pt}
	if len(parts) > 2 {
		ch, err := strconv.ParseUint(parts[2], 10, 16)
		if err != nil {
			return codec{}, false
		}
		c.channels = uint16(ch)
	}
	return c, true
}

// negotiate keeps, in the offerer's order, the offered codecs that cfg
// allows. telephone-event is kept only beside an audio codec of the same
// clock rate (RFC 4733 §2.5.1.2). No audio codec left is ErrNoCommonCodec.
func negotiate(offered []codec, allowed allowedSet) ([]codec, error) {
	var audio []codec
	for _, c := range offered {
		if !c.isDTMF() && allowed.has(c) && !containsCodec(audio, c) {
			audio = append(audio, c)
		}
	}
	if len(audio) == 0 {
		return nil, ErrNoCommonCodec
	}
	var out []codec
	for _, c := range offered {
		switch {
		case !allowed.has(c) || containsCodec(out, c):
		case !c.isDTMF():
			out = append(out, c)
		case hasClock(audio, c.clock):
			out = append(out, c)
		}
	}
	return out, nil
}

func containsCodec(list []codec, c codec) bool {
	_, ok := findCodec(list, c)
	return ok
}

func findCodec(list []codec, c codec) (codec, bool) {
	for _, l := range list {
		if l.same(c) {
			return l, true
		}
	}
	return codec{}, false
}

func hasClock(list []codec, clock uint32) bool {
	for _, c := range list {
		if c.clock == clock {
			return true
		}
	}
	return false
}

func codecNames(list []codec) string {
	names := make([]string, len(list))
	for i, c := range list {
		names[i] = c.rtpmap()
	}
	return strings.Join(names, ",")
}
