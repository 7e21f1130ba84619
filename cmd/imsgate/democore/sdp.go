package democore

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// codec is one RTP payload format of an audio m= line.
type codec struct {
	pt       uint8
	name     string // lower case encoding name, e.g. "pcmu"
	clock    int
	channels int
	fmtp     string
}

func (c codec) rtpmap() string {
	s := fmt.Sprintf("%d %s/%d", c.pt, strings.ToUpper(c.name), c.clock)
	if c.name == "opus" || c.name == "telephone-event" {
		s = fmt.Sprintf("%d %s/%d", c.pt, c.name, c.clock)
	}
	if c.channels > 1 {
		s += "/" + strconv.Itoa(c.channels)
	}
	return s
}

// staticCodecs are the RFC 3551 §6 static payload types the core knows.
var staticCodecs = map[uint8]codec{
	0: {pt: 0, name: "pcmu", clock: 8000},
	8: {pt: 8, name: "pcma", clock: 8000},
	9: {pt: 9, name: "g722", clock: 8000},
}

// knownCodec reports whether the echo target can answer with c.
func knownCodec(c codec) bool {
	switch c.name {
	case "pcmu", "pcma", "g722", "opus":
		return true
	}
	return false
}

// audioMedia is the part of an SDP the core acts on: the first audio m= line.
type audioMedia struct {
	index     int // m= line index
	addr      *net.UDPAddr
	proto     string
	codecs    []codec // in m= order
	direction string
}

// remoteSDP is a parsed offer or answer.
type remoteSDP struct {
	desc  *sdp.SessionDescription
	audio *audioMedia // nil when no usable audio line
}

// parseSDP parses body and finds its first audio line with a nonzero port.
func parseSDP(body []byte) (*remoteSDP, error) {
	var desc sdp.SessionDescription
	if err := desc.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("parse sdp: %w: %w", ErrBadSDP, err)
	}
	out := &remoteSDP{desc: &desc}
	for i, m := range desc.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		proto := strings.Join(m.MediaName.Protos, "/")
		if proto != "RTP/AVP" && proto != "RTP/AVPF" {
			continue
		}
		conn := m.ConnectionInformation
		if conn == nil {
			conn = desc.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			return nil, fmt.Errorf("parse sdp: %w: no c= line", ErrBadSDP)
		}
		ip := net.ParseIP(conn.Address.Address)
		if ip == nil {
			return nil, fmt.Errorf("parse sdp: %w: c= address %q", ErrBadSDP, conn.Address.Address)
		}
		am := &audioMedia{
			index:     i,
			addr:      &net.UDPAddr{IP: ip, Port: m.MediaName.Port.Value},
			proto:     proto,
			direction: "sendrecv",
		}
		for _, f := range m.MediaName.Formats {
			n, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			am.codecs = append(am.codecs, codecOf(m, uint8(n)))
		}
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				am.direction = a.Key
			}
		}
		out.audio = am
		return out, nil
	}
	return out, nil
}

// codecOf reads the rtpmap/fmtp of pt, falling back to the static table.
func codecOf(m *sdp.MediaDescription, pt uint8) codec {
	c, ok := staticCodecs[pt]
	if !ok {
		c = codec{pt: pt}
	}
	prefix := strconv.Itoa(int(pt)) + " "
	for _, a := range m.Attributes {
		if !strings.HasPrefix(a.Value, prefix) {
			continue
		}
		rest := strings.TrimSpace(a.Value[len(prefix):])
		switch a.Key {
		case "rtpmap":
			parts := strings.Split(rest, "/")
			c.name = strings.ToLower(parts[0])
			if len(parts) > 1 {
				c.clock, _ = strconv.Atoi(parts[1])
			}
			if len(parts) > 2 {
				c.channels, _ = strconv.Atoi(parts[2])
			}
		case "fmtp":
			c.fmtp = rest
		}
	}
	return c
}

// answerChoice is what the echo target picked from an offer.
type answerChoice struct {
	codec codec
	event *codec // telephone-event, when offered at the codec's clock rate
}

// chooseAnswer picks the first offered codec the core knows (RFC 3264 §6.1
// keeps the offer's payload types) and telephone-event if offered.
func chooseAnswer(a *audioMedia) (answerChoice, error) {
	var ch answerChoice
	found := false
	for _, c := range a.codecs {
		if knownCodec(c) {
			ch.codec, found = c, true
			break
		}
	}
	if !found {
		return ch, fmt.Errorf("choose codec: %w: no common codec", ErrBadSDP)
	}
	for _, c := range a.codecs {
		if c.name == "telephone-event" && (c.clock == ch.codec.clock || (ch.codec.name == "g722" && c.clock == 8000)) {
			ev := c
			ch.event = &ev
			break
		}
	}
	return ch, nil
}

// answerDirection mirrors the offer's direction (RFC 3264 §6.1).
func answerDirection(offer string) string {
	switch offer {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	default:
		return "sendrecv"
	}
}

// buildAnswer writes an RTP/AVP answer with one line per offered m= line;
// lines other than the chosen audio one are rejected with port 0.
func buildAnswer(offer *remoteSDP, choice answerChoice, ip net.IP, port int, sessID uint64) []byte {
	var b strings.Builder
	writeSessionHeader(&b, ip, sessID)
	for i, m := range offer.desc.MediaDescriptions {
		if i != offer.audio.index {
			first := "0"
			if len(m.MediaName.Formats) > 0 {
				first = m.MediaName.Formats[0]
			}
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", m.MediaName.Media, strings.Join(m.MediaName.Protos, "/"), first)
			continue
		}
		codecs := []codec{choice.codec}
		if choice.event != nil {
			codecs = append(codecs, *choice.event)
		}
		writeAudio(&b, offer.audio.proto, port, codecs, answerDirection(offer.audio.direction))
	}
	return []byte(b.String())
}

// buildOffer writes the caller's RTP/AVP offer: PCMU, PCMA, telephone-event.
func buildOffer(ip net.IP, port int, sessID uint64) []byte {
	var b strings.Builder
	writeSessionHeader(&b, ip, sessID)
	writeAudio(&b, "RTP/AVP", port, offerCodecs, "sendrecv")
	return []byte(b.String())
}

var offerCodecs = []codec{
	staticCodecs[0],
	staticCodecs[8],
	{pt: 101, name: "telephone-event", clock: 8000, fmtp: "0-16"},
}

func writeSessionHeader(b *strings.Builder, ip net.IP, sessID uint64) {
	family := "IP4"
	if ip.To4() == nil {
		family = "IP6"
	}
	fmt.Fprintf(b, "v=0\r\no=democore %d %d IN %s %s\r\ns=democore\r\nc=IN %s %s\r\nt=0 0\r\n",
		sessID, sessID, family, ip, family, ip)
}

func writeAudio(b *strings.Builder, proto string, port int, codecs []codec, direction string) {
	fmt.Fprintf(b, "m=audio %d %s", port, proto)
	for _, c := range codecs {
		fmt.Fprintf(b, " %d", c.pt)
	}
	b.WriteString("\r\n")
	for _, c := range codecs {
		fmt.Fprintf(b, "a=rtpmap:%s\r\n", c.rtpmap())
		if c.fmtp != "" {
			fmt.Fprintf(b, "a=fmtp:%d %s\r\n", c.pt, c.fmtp)
		}
	}
	fmt.Fprintf(b, "a=ptime:20\r\na=%s\r\n", direction)
}

func newSessionID() uint64 { return uint64(time.Now().UnixNano() / 1000) }

// rtpmapName is the encoding name as written in a=rtpmap, e.g. "PCMU", "opus".
func (c codec) rtpmapName() string {
	if c.name == "opus" || c.name == "telephone-event" {
		return c.name
	}
	return strings.ToUpper(c.name)
}
