package mediabridge

import "fmt"

// The browser-side halves of offer/answer: the gateway writes the browser
// SDP itself and starts DTLS in the role the exchange gives it.

func (s *Session) webSDPParams(codecs []codec, dir direction, setup, mid string, rtcpRsize bool) webSDPParams {
	return webSDPParams{
		sessionID: s.id,
		publicIP:  s.engine.publicIP,
		port:      s.engine.webRTCPort(),
		ufrag:     s.ep.localUfrag,
		pwd:       s.ep.localPwd,
		cert:      s.engine.cert,
		setup:     setup,
		mid:       mid,
		rtcpRsize: rtcpRsize,
		codecs:    codecs,
		dir:       dir,
		ssrc:      s.ep.ssrc,
		cname:     s.ep.cname,
		streamID:  s.ep.streamID,
	}
}

// answerWeb finishes CoreAnswer: the browser's answer, and the DTLS
// handshake in the role the answer gives us.
func (s *Session) answerWeb(pts *ptMap, webCodecs []codec, cm coreMedia) ([]byte, error) {
	wt := s.webTransport
	role, setup := answerRole(wt.setup)
	mid := wt.mid
	if mid == "" {
		mid = "0"
	}
	answer, err := s.webSDPParams(webCodecs, cm.dir, setup, mid, wt.rtcpRsize).webAnswerSDP(s.webOffer, s.webOfferAudio)
	if err != nil {
		return nil, fmt.Errorf("core answer: %w", err)
	}
	s.ep.start(role, wt.fingerprint)
	s.fwd.pts.Store(pts)
	s.fwd.setCoreRemote(cm.addr)
	s.webAnswer = answer
	s.state = negotiationDone
	return answer, nil
}

// offerWeb finishes CoreOffer: our actpass offer to the browser. Its
// checks are answered from now on, before its answer reaches us.
func (s *Session) offerWeb(codecs, webCodecs []codec, cm coreMedia) ([]byte, error) {
	offer, err := s.webSDPParams(webCodecs, cm.dir, "actpass", "0", true).webOfferSDP()
	if err != nil {
		return nil, fmt.Errorf("core offer: %w", err)
	}
	s.offerCodecs = codecs
	s.fwd.setCoreRemote(cm.addr)
	s.state = negotiationCoreOffered
	return offer, nil
}
