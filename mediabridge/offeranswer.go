package mediabridge

import "fmt"

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
	wt, err := parseWebTransport(sd, md)
	if err != nil {
		return nil, fmt.Errorf("web offer: %w: %w", ErrBadSDP, err)
	}
	s.webOffer, s.webOfferAudio, s.webTransport = sd, md, wt
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

	return s.answerWeb(pts, webCodecs, cm)
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
	return s.offerWeb(codecs, webCodecs, cm)
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
	wt, err := parseWebTransport(sd, md)
	if err != nil {
		return nil, fmt.Errorf("web answer: %w: %w", ErrBadSDP, err)
	}
	s.ep.start(offerRole(wt.setup), wt.fingerprint)
	coreAnswer, err := buildCoreSDP(s.engine.publicIP, s.ports.port, coreMedia{codecs: coreCodecs, dir: mediaDirection(sd, md)}, s.id)
	if err != nil {
		return nil, fmt.Errorf("web answer: %w", err)
	}
	s.fwd.pts.Store(pts)
	s.state = negotiationDone
	return coreAnswer, nil
}
