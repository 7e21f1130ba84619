package webua

import (
	"fmt"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Payload types we offer, as a browser does (RFC 3551 static ones for G.711).
const (
	ptPCMU           = 0
	ptPCMA           = 8
	ptOpus           = 111
	ptTelephoneEvent = 101
)

// NewAPI returns a webrtc API restricted to loopback host candidates, so
// tests never touch a real network, offering PCMU, PCMA, opus and
// telephone-event. Share one API between many UAs to save memory.
func NewAPI() *webrtc.API {
	api, err := newAPI()
	if err != nil {
		// Registering static codecs cannot fail; keep the signature simple.
		return webrtc.NewAPI()
	}
	return api
}

func newAPI() (*webrtc.API, error) {
	var me webrtc.MediaEngine
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: ptPCMU},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: ptPCMA},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: ptOpus},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: ptTelephoneEvent},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register codec %s: %w", c.MimeType, err)
		}
	}
	var se webrtc.SettingEngine
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// mDNS would send multicast off the loopback; loopback candidates need no hiding.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// rtpengine's answer declares no a=ssrc; without this pion drops its
	// media until an answer names the SSRC. Harmless against imsgate.
	se.SetHandleUndeclaredSSRCWithoutAnswer(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)), nil
}
