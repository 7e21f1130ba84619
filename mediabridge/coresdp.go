package mediabridge

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/pion/sdp/v3"
)

// coreMedia is what the bridge needs from, or puts in, a core-side SDP.
type coreMedia struct {
	addr   netip.AddrPort // invalid when the SDP gives no usable address (c=0.0.0.0 hold)
	codecs []codec
	dir    direction
}

// audioSection finds the first audio m-line that is not rejected (port 0).
func audioSection(sd *sdp.SessionDescription) (*sdp.MediaDescription, bool) {
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			return md, true
		}
	}
	return nil, false
}

func unmarshalSDP(data []byte) (*sdp.SessionDescription, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(data)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	return &sd, nil
}

// parseCoreSDP reads a plain RTP/AVP SDP from the core. Secure profiles are
// not carried yet (SDES-SRTP is future work), so they count as no codec.
func parseCoreSDP(data []byte) (coreMedia, error) {
	sd, err := unmarshalSDP(data)
	if err != nil {
		return coreMedia{}, err
	}
	md, ok := audioSection(sd)
	if !ok {
		return coreMedia{}, fmt.Errorf("%w: no audio m-line", ErrNoCommonCodec)
	}
	if proto := protoString(md); proto != "RTP/AVP" && proto != "RTP/AVPF" {
		return coreMedia{}, fmt.Errorf("%w: audio profile %s", ErrNoCommonCodec, proto)
	}
	cm := coreMedia{codecs: parseCodecs(md), dir: mediaDirection(sd, md)}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return coreMedia{}, fmt.Errorf("%w: no c= line", ErrBadSDP)
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return coreMedia{}, fmt.Errorf("%w: c= address %q", ErrBadSDP, ci.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return coreMedia{}, fmt.Errorf("%w: audio port %d", ErrBadSDP, port)
	}
	if !ip.IsUnspecified() {
		cm.addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	return cm, nil
}

func protoString(md *sdp.MediaDescription) string {
	s := ""
	for i, p := range md.MediaName.Protos {
		if i > 0 {
			s += "/"
		}
		s += p
	}
	return s
}

// buildCoreSDP writes the RTP/AVP SDP the core sees: only c=, m=audio,
// rtpmap, fmtp, ptime and the direction; never a WebRTC attribute.
func buildCoreSDP(publicIP netip.Addr, port int, cm coreMedia, sessionID uint64) ([]byte, error) {
	addrType := "IP4"
	if publicIP.Is6() && !publicIP.Is4In6() {
		addrType = "IP6"
	}
	ip := publicIP.Unmap().String()
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: port},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, c := range cm.codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.pt)))
		md.Attributes = append(md.Attributes, sdp.Attribute{Key: "rtpmap", Value: c.rtpmap()})
		fmtp := c.fmtp
		if c.isDTMF() {
			fmtp = dtmfEvents
		}
		if fmtp != "" {
			md.Attributes = append(md.Attributes, sdp.Attribute{Key: "fmtp", Value: fmt.Sprintf("%d %s", c.pt, fmtp)})
		}
	}
	md.Attributes = append(md.Attributes, sdp.Attribute{Key: "ptime", Value: "20"})
	setDirection(md, cm.dir)
	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       "imsgate",
			SessionID:      sessionID,
			SessionVersion: sessionID,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: ip,
		},
		SessionName: "imsgate",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: ip},
		},
		TimeDescriptions:  []sdp.TimeDescription{{Timing: sdp.Timing{}}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal core sdp: %w", err)
	}
	return out, nil
}
