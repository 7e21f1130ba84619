package mediabridge

import "github.com/pion/webrtc/v4"

// coreTrack is the TrackLocal carrying core audio to the browser. pion's
// TrackLocalStaticRTP forces every packet to the one payload type it bound,
// which would turn RFC 4733 telephone-events into audio; this track keeps the
// payload type the forwarder mapped and takes raw header+payload.
type coreTrack struct {
	fwd      *forwarder
	id       string
	streamID string
}

// Bind runs when pion starts the sender, after DTLS is up.
func (t *coreTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	params := ctx.CodecParameters()
	if len(params) == 0 {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	primary := params[0]
	for _, p := range params {
		if p.MimeType != "audio/"+telephoneEvent {
			primary = p
			break
		}
	}
	t.fwd.web.Store(&webBinding{ssrc: uint32(ctx.SSRC()), writer: ctx.WriteStream()})
	return primary, nil
}

// Unbind runs when the sender stops.
func (t *coreTrack) Unbind(webrtc.TrackLocalContext) error {
	t.fwd.web.Store(nil)
	return nil
}

func (t *coreTrack) ID() string                { return t.id }
func (t *coreTrack) RID() string               { return "" }
func (t *coreTrack) StreamID() string          { return t.streamID }
func (t *coreTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }
