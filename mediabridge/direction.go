package mediabridge

import "github.com/pion/sdp/v3"

// direction is the media direction attribute of an m-line (RFC 3264 §5.1),
// seen from the SDP's author. The gateway is transparent, so a direction is
// copied unchanged from one side's SDP to the other's.
type direction int

const (
	directionUnknown direction = iota
	directionSendRecv
	directionSendOnly
	directionRecvOnly
	directionInactive
)

func (d direction) String() string {
	switch d {
	case directionSendRecv:
		return "sendrecv"
	case directionSendOnly:
		return "sendonly"
	case directionRecvOnly:
		return "recvonly"
	case directionInactive:
		return "inactive"
	default:
		return "unknown"
	}
}

func parseDirection(s string) direction {
	switch s {
	case "sendrecv":
		return directionSendRecv
	case "sendonly":
		return directionSendOnly
	case "recvonly":
		return directionRecvOnly
	case "inactive":
		return directionInactive
	default:
		return directionUnknown
	}
}

// mediaDirection reads the direction of md, falling back to the session
// level and then to sendrecv (RFC 3264 §5.1 default).
func mediaDirection(sd *sdp.SessionDescription, md *sdp.MediaDescription) direction {
	for _, a := range md.Attributes {
		if d := parseDirection(a.Key); d != directionUnknown {
			return d
		}
	}
	for _, a := range sd.Attributes {
		if d := parseDirection(a.Key); d != directionUnknown {
			return d
		}
	}
	return directionSendRecv
}

// setDirection replaces any direction attribute of md with d.
func setDirection(md *sdp.MediaDescription, d direction) {
	attrs := md.Attributes[:0]
	for _, a := range md.Attributes {
		if parseDirection(a.Key) == directionUnknown {
			attrs = append(attrs, a)
		}
	}
	md.Attributes = append(attrs, sdp.Attribute{Key: d.String()})
}

// sends and receives read a direction from its author's side; unknown
// counts as sendrecv (RFC 3264 §5.1 default).
func (d direction) sends() bool { return d != directionRecvOnly && d != directionInactive }

func (d direction) receives() bool { return d != directionSendOnly && d != directionInactive }
