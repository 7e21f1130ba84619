package mediabridge

import (
	"fmt"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// WebOffer takes the browser's offer and returns the RTP/AVP offer for the
// core. The browser gets its answer from CoreAnswer, once the core's codec
// choice is known.
func (s *Session) WebOffer(offer []byte) ([]byte, error) {
	if err := s.checkState(negotiationIdle); err != nil {
		return nil, fmt.Errorf("web offer: %w", err)
	}
	sd, err := unmarshalSDP(offer)
	if err != nil {
		return nil, fmt.Errorf("web offer: %w", err)
	}
	md, ok := audioSection(sd)
	if !ok {
		return nil, fmt.Errorf("web offer: %w: no audio m-line", ErrNoCommonCodec)
	}
	codecs, err := negotiate(parseCodecs(md), s.engine.allowed)
	if err != nil {
		return nil, fmt.Errorf("web offer: %w", err)
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		return nil, fmt.Errorf("web offer: %w: %w", ErrBadSDP, err)
	}
	coreOffer, err := buildCoreSDP(s.engine.publicIP, s.ports.port, coreMedia{codecs: codecs, dir: mediaDirection(sd, md)}, s.id)
	if err != nil {
		return nil, fmt.Errorf("web offer: %w", err)
	}
	s.offerCodecs = codecs
	s.state = negotiationWebOffered
	return coreOffer, nil
}

// CoreAnswer takes the core's answer to the offer WebOffer made and returns
// the answer for the browser. It may come for a 18x and again for the 200:
// a repeat returns the same answer and only follows a changed core address.
func (s *Session) CoreAnswer(answer []byte) ([]byte, error) {
	if s.state == negotiationDone && s.webAnswer != nil {
		cm, err := parseCoreSDP(answer)
		if err != nil {
			return nil, fmt.Errorf("core answer: %w", err)
		}
		s.fwd.setCoreRemote(cm.addr)
		return s.webAnswer, nil
	}
	if err := s.checkState(negotiationWebOffered); err != nil {
		return nil, fmt.Errorf("core answer: %w", err)
	}
	cm, err := parseCoreSDP(answer)
	if err != nil {
		return nil, fmt.Errorf("core answer: %w", err)
	}
	// Pair each answered codec, in the core's order, with the browser's
	// entry (our core offer used the browser's payload types).
	pts := newPTMap()
	var webCodecs []codec
	audio := 0
	for _, c := range cm.codecs {
		web, ok := findCodec(s.offerCodecs, c)
		if !ok || containsCodec(webCodecs, c) {
			continue
		}
		pts.link(web.pt, c.pt)
		pts.alsoFromCore(web.pt, web.pt)
		webCodecs = append(webCodecs, web)
		if !web.isDTMF() {
			audio++
		}
	}
	if audio == 0 {
		return nil, fmt.Errorf("core answer: %w: answered %s", ErrNoCommonCodec, codecNames(cm.codecs))
	}

	sender, err := s.pc.AddTrack(s.track)
	if err != nil {
		return nil, fmt.Errorf("core answer: add track: %w", err)
	}
	if err := s.setCodecPreferences(sender, webCodecs); err != nil {
		return nil, fmt.Errorf("core answer: %w", err)
	}
	desc, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("core answer: create web answer: %w", err)
	}
	local, err := s.setLocal(desc)
	if err != nil {
		return nil, fmt.Errorf("core answer: %w", err)
	}
	webAnswer, err := rewriteWebSDP(local, cm.dir)
	if err != nil {
		return nil, fmt.Errorf("core answer: %w", err)
	}
	s.fwd.pts.Store(pts)
	s.fwd.setCoreRemote(cm.addr)
	s.webAnswer = webAnswer
	s.state = negotiationDone
	return webAnswer, nil
}

// CoreOffer takes the core's offer and returns the WebRTC offer for the
// browser.
func (s *Session) CoreOffer(offer []byte) ([]byte, error) {
	if err := s.checkState(negotiationIdle); err != nil {
		return nil, fmt.Errorf("core offer: %w", err)
	}
	cm, err := parseCoreSDP(offer)
	if err != nil {
		return nil, fmt.Errorf("core offer: %w", err)
	}
	codecs, err := negotiate(cm.codecs, s.engine.allowed)
	if err != nil {
		return nil, fmt.Errorf("core offer: %w: offered %s", err, codecNames(cm.codecs))
	}
	// The browser side uses our own payload types; the forwarder maps.
	webCodecs := make([]codec, 0, len(codecs))
	for _, c := range codecs {
		canon, _ := supported(c)
		webCodecs = append(webCodecs, canon)
	}
	sender, err := s.pc.AddTrack(s.track)
	if err != nil {
		return nil, fmt.Errorf("core offer: add track: %w", err)
	}
	if err := s.setCodecPreferences(sender, webCodecs); err != nil {
		return nil, fmt.Errorf("core offer: %w", err)
	}
	desc, err := s.pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("core offer: create web offer: %w", err)
	}
	local, err := s.setLocal(desc)
	if err != nil {
		return nil, fmt.Errorf("core offer: %w", err)
	}
	webOffer, err := rewriteWebSDP(local, cm.dir)
	if err != nil {
		return nil, fmt.Errorf("core offer: %w", err)
	}
	ufrag, pwd := iceCredentials(local)
	if ufrag != "" && pwd != "" {
		s.localUfrag = ufrag
		s.engine.early.await(ufrag, pwd)
	}
	s.offerCodecs = codecs
	// Send to the SDP address until the core's first packet is latched.
	s.fwd.setCoreRemote(cm.addr)
	s.state = negotiationCoreOffered
	return webOffer, nil
}

// WebAnswer takes the browser's answer to the offer CoreOffer made and
// returns the RTP/AVP answer for the core.
func (s *Session) WebAnswer(answer []byte) ([]byte, error) {
	if err := s.checkState(negotiationCoreOffered); err != nil {
		return nil, fmt.Errorf("web answer: %w", err)
	}
	sd, err := unmarshalSDP(answer)
	if err != nil {
		return nil, fmt.Errorf("web answer: %w", err)
	}
	md, ok := audioSection(sd)
	if !ok {
		return nil, fmt.Errorf("web answer: %w: audio rejected", ErrNoCommonCodec)
	}
	pts := newPTMap()
	var coreCodecs []codec
	audio := 0
	for _, web := range parseCodecs(md) {
		core, ok := findCodec(s.offerCodecs, web)
		if !ok || containsCodec(coreCodecs, web) {
			continue
		}
		pts.link(web.pt, core.pt)
		if canon, ok := supported(web); ok {
			pts.alsoFromWeb(canon.pt, core.pt)
		}
		coreCodecs = append(coreCodecs, core)
		if !core.isDTMF() {
			audio++
		}
	}
	if audio == 0 {
		return nil, fmt.Errorf("web answer: %w", ErrNoCommonCodec)
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return nil, fmt.Errorf("web answer: %w: %w", ErrBadSDP, err)
	}
	// pion knows the browser's credentials now: its early check counts.
	s.engine.early.release(s.localUfrag, true)
	coreAnswer, err := buildCoreSDP(s.engine.publicIP, s.ports.port, coreMedia{codecs: coreCodecs, dir: mediaDirection(sd, md)}, s.id)
	if err != nil {
		return nil, fmt.Errorf("web answer: %w", err)
	}
	s.fwd.pts.Store(pts)
	s.state = negotiationDone
	return coreAnswer, nil
}

func (s *Session) setCodecPreferences(sender *webrtc.RTPSender, codecs []codec) error {
	params := make([]webrtc.RTPCodecParameters, len(codecs))
	for i, c := range codecs {
		params[i] = c.webParameters()
	}
	for _, t := range s.pc.GetTransceivers() {
		if t.Sender() != sender {
			continue
		}
		if err := t.SetCodecPreferences(params); err != nil {
			return fmt.Errorf("set codec preferences %s: %w", codecNames(codecs), err)
		}
		return nil
	}
	return fmt.Errorf("set codec preferences: %w", errNoAudioSection)
}

// setLocal applies desc and waits for the (single, host) candidate so the
// returned SDP is complete: the gateway does not trickle.
func (s *Session) setLocal(desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	timer := time.NewTimer(gatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return "", errGatherTimeout
	}
	local := s.pc.LocalDescription()
	if local == nil {
		return "", errGatherTimeout
	}
	return local.SDP, nil
}

// rewriteWebSDP sets the audio direction copied from the core side and
// rejects every non-audio m-line (port 0, RFC 3264 §6), taking it out of
// the BUNDLE group too (RFC 8843 §7.3.3): pion would otherwise accept a
// data channel the core cannot carry.
func rewriteWebSDP(local string, dir direction) ([]byte, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(local); err != nil {
		return nil, fmt.Errorf("parse local description: %w", err)
	}
	audioMid := ""
	found := false
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && !found && md.MediaName.Port.Value != 0 {
			setDirection(md, dir)
			audioMid, _ = md.Attribute("mid")
			found = true
			continue
		}
		md.MediaName.Port = sdp.RangedPort{Value: 0}
	}
	if !found {
		return nil, errNoAudioSection
	}
	for i, a := range sd.Attributes {
		if a.Key == "group" && strings.HasPrefix(a.Value, "BUNDLE") {
			sd.Attributes[i].Value = strings.TrimSpace("BUNDLE " + audioMid)
		}
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal web sdp: %w", err)
	}
	return out, nil
}

// iceCredentials returns the first a=ice-ufrag and a=ice-pwd of an SDP.
func iceCredentials(sdpText string) (ufrag, pwd string) {
	for _, line := range strings.Split(sdpText, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := strings.CutPrefix(line, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	return ufrag, pwd
}
