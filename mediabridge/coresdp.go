package mediabridge

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/pion/sdp/v3"
)

// coreMedia is what the bridge puts in a core-side SDP.
type coreMedia struct {
	codecs []codec
	dir    direction
}

func unmarshalSDP(data []byte) (*sdp.SessionDescription, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadSDP)
	}
	if err := checkLineEnds(data); err != nil {
		return nil, err
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(data)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	return &sd, nil
}

// checkLineEnds refuses a description with a CR that ends no line, or a
// NUL: pion/sdp keeps both inside a value, and a value copied to the other
// leg would then carry a line of the sender's own making (a c= naming
// another media address, say) to a peer that splits lines at CR.
func checkLineEnds(data []byte) error {
	for i, b := range data {
		switch {
		case b == 0:
			return fmt.Errorf("%w: NUL at byte %d", ErrBadSDP, i)
		case b == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			return fmt.Errorf("%w: CR not followed by LF at byte %d", ErrBadSDP, i)
		}
	}
	return nil
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
// rtpmap, fmtp, ptime and the direction, never a WebRTC attribute; the
// leg's other m-lines rejected in their places.
func buildCoreSDP(publicIP netip.Addr, port int, cm coreMedia, l layout, sessionID, version uint64) ([]byte, error) {
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
			SessionVersion: version,
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
		MediaDescriptions: l.sections(md),
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal core sdp: %w", err)
	}
	return out, nil
}
