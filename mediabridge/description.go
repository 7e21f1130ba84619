package mediabridge

import (
	"fmt"
	"net/netip"

	"github.com/pion/sdp/v3"
)

// Leg names one side of a session.
type Leg int

const (
	LegUnknown Leg = iota
	LegWeb         // the browser: ICE, DTLS-SRTP
	LegCore        // the core: RTP/AVP
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

func (l Leg) other() Leg {
	switch l {
	case LegWeb:
		return LegCore
	case LegCore:
		return LegWeb
	}
	return LegUnknown
}

// description is a session description one leg sent us, read for what the
// bridge needs of it.
type description struct {
	sd     *sdp.SessionDescription
	audio  int     // index of the audio section the bridge carries
	codecs []codec // the formats the bridge carries, in the author's order and payload types
	dir    direction
	addr   netip.AddrPort // core: where its RTP goes (invalid for c=0.0.0.0 hold)
	web    webTransport   // web: ICE and DTLS
}

func (d *description) media() *sdp.MediaDescription { return d.sd.MediaDescriptions[d.audio] }

// readDescription reads one leg's SDP with the codecs the engine allows.
func (s *Session) readDescription(from Leg, body []byte, isOffer bool) (*description, error) {
	return readDescription(s.engine.allowed, from, body, isOffer)
}

// readDescription parses one leg's SDP. An offer's codecs are cut down to
// what allowed has (negotiate); an answer's are kept as given, to be paired
// with what we offered.
func readDescription(allowed allowedSet, from Leg, body []byte, isOffer bool) (*description, error) {
	sd, err := unmarshalSDP(body)
	if err != nil {
		return nil, err
	}
	d := &description{sd: sd, audio: -1}
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			d.audio = i
			break
		}
	}
	if d.audio < 0 {
		return nil, fmt.Errorf("%w: no audio m-line", ErrNoCommonCodec)
	}
	md := d.media()
	d.dir = mediaDirection(sd, md)
	d.codecs = parseCodecs(md)
	if isOffer {
		ok, err := negotiate(d.codecs, allowed)
		if err != nil {
			return nil, fmt.Errorf("%w: offered %s", err, codecNames(d.codecs))
		}
		d.codecs = ok
	}
	if from == LegCore {
		if err := d.readCore(); err != nil {
			return nil, err
		}
	} else if d.web, err = parseWebTransport(sd, md); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	return d, nil
}

// readCore checks the core's profile and reads its media address. Secure
// profiles are not carried yet (SDES-SRTP is future work).
func (d *description) readCore() error {
	md := d.media()
	if proto := protoString(md); proto != "RTP/AVP" && proto != "RTP/AVPF" {
		return fmt.Errorf("%w: audio profile %s", ErrNoCommonCodec, proto)
	}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = d.sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return fmt.Errorf("%w: no c= line", ErrBadSDP)
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return fmt.Errorf("%w: c= address %q", ErrBadSDP, ci.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%w: audio port %d", ErrBadSDP, port)
	}
	if !ip.IsUnspecified() {
		d.addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	return nil
}

// layout is the m-lines of a leg's session in order; ours is the audio
// one, every other is carried rejected (port 0) so the count and order
// never change (RFC 3264 §8).
type layout struct {
	media []*sdp.MediaDescription
	audio int
}

func (d *description) layout() layout {
	return layout{media: d.sd.MediaDescriptions, audio: d.audio}
}

// sections returns the m-lines for a description of ours: audio in its
// place, the others rejected. A leg with no layout yet gets audio alone.
func (l layout) sections(audio *sdp.MediaDescription) []*sdp.MediaDescription {
	if len(l.media) == 0 {
		return []*sdp.MediaDescription{audio}
	}
	out := make([]*sdp.MediaDescription, len(l.media))
	for i, md := range l.media {
		if i == l.audio {
			out[i] = audio
		} else {
			out[i] = rejectedMedia(md)
		}
	}
	return out
}

// ourOrigin is our o= line on one leg: the session id stays, the version goes
// up by one whenever what we describe changes, and only then (RFC 3264 §8).
type ourOrigin struct {
	version uint64
	last    []byte // the last description we sent, built at version
}

// next builds a description at the current version and, if it differs from
// the last one sent, again at the next version.
func (o *ourOrigin) next(build func(version uint64) ([]byte, error)) ([]byte, error) {
	body, err := build(o.version)
	if err != nil {
		return nil, err
	}
	if o.last != nil && string(body) != string(o.last) {
		o.version++
		if body, err = build(o.version); err != nil {
			return nil, err
		}
	}
	o.last = body
	return body, nil
}

// describe writes our description for leg `to`: the codecs in its payload
// types, a direction, and on the web leg our DTLS setup ("actpass" in an
// offer). The o= version follows the leg's origin rules.
func (s *Session) describe(to Leg, codecs []codec, dir direction, setup string) ([]byte, error) {
	st := s.legState(to)
	if to == LegCore {
		return st.origin.next(func(v uint64) ([]byte, error) {
			return buildCoreSDP(s.engine.publicIP, s.ports.port, coreMedia{codecs: codecs, dir: dir}, st.layout, s.id, v)
		})
	}
	mid := "0"
	if len(st.layout.media) > 0 {
		if m, ok := st.layout.media[st.layout.audio].Attribute("mid"); ok && m != "" {
			mid = m
		}
	}
	rsize := setup == "actpass" || s.webRemote.rtcpRsize
	ufrag, pwd := s.ep.credentials()
	p := webSDPParams{
		sessionID: s.id,
		publicIP:  s.engine.publicIP,
		port:      s.engine.webRTCPort(),
		tcpPort:   s.engine.webRTCTCPPort(),
		ufrag:     ufrag,
		pwd:       pwd,
		cert:      s.engine.cert,
		setup:     setup,
		mid:       mid,
		rtcpRsize: rsize,
		codecs:    codecs,
		dir:       dir,
		ssrc:      s.ep.ssrc,
		cname:     s.ep.cname,
		streamID:  s.ep.streamID,
	}
	body, err := st.origin.next(func(v uint64) ([]byte, error) {
		p.version = v
		return p.build(st.layout)
	})
	if err != nil {
		return nil, fmt.Errorf("web sdp: %w", err)
	}
	return body, nil
}
