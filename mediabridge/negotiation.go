package mediabridge

import (
	"fmt"
	"slices"
)

// The session's offer/answer across its two legs (RFC 3264, RFC 6337). The
// gateway is a full B2BUA: each leg negotiates on its own, with its own
// payload types, m-line layout and o= version. An offer from one leg goes on
// to the other only when what the other leg sees must change (direction,
// codecs); otherwise the session answers it alone (an ICE restart, a core
// moving its media or renumbering its payload types).

// Step is what the call does with a description the session took.
type Step struct {
	// Answer goes back to the leg that offered.
	Answer []byte
	// Offer goes to the other leg; its answer (Session.Answer) gives the
	// answer for the leg that offered.
	Offer []byte
}

// pair is one codec carried across the legs, in each leg's payload type.
// The alternates are the types our own offer on that leg used, in case the
// leg sends with those instead of its answer's (ptNone when the same). A
// browser's telephone-event the core did not take is a pair with no core
// side (webEvents): the gateway itself takes its digits (dtmf.to_core).
type pair struct {
	web, core       codec
	webAlt, coreAlt uint8
}

// legState is what a leg's session is once negotiated.
type legState struct {
	dir    direction // the direction the leg itself last declared
	layout layout    // its m-lines
	origin ourOrigin // our o= toward it
}

// pendingOffer is an offer of ours on leg `to` waiting for its answer:
// either carrying another leg's offer (from) or our own (from unknown).
type pendingOffer struct {
	from  Leg
	to    Leg
	offer *description // the offering leg's description; nil for our own
	// sent are the codecs our offer carried in `to`'s payload types, src
	// the same codecs in the other leg's.
	sent, src []codec
	// followUp: the offer carries the outcome of an offer of ours on the
	// other leg; its own answer ends the chain.
	followUp bool
}

func (s *Session) legState(l Leg) *legState {
	if l == LegWeb {
		return &s.web
	}
	return &s.core
}

// Offer takes an offer from leg `from`. The first offer always goes on to
// the other leg; later ones go on only if the other leg's media must
// change. On error nothing changed: the leg keeps its session (488).
func (s *Session) Offer(from Leg, body []byte) (Step, error) {
	if err := s.ready(); err != nil {
		return Step{}, fmt.Errorf("%s offer: %w", from, err)
	}
	d, err := s.readDescription(from, body, true)
	if err != nil {
		return Step{}, fmt.Errorf("%s offer: %w", from, err)
	}
	if s.negotiated && !s.otherMustChange(from, d) {
		answer, err := s.answerAlone(from, d)
		if err != nil {
			return Step{}, fmt.Errorf("%s offer: %w", from, err)
		}
		return Step{Answer: answer}, nil
	}
	to := from.other()
	sent := make([]codec, 0, len(d.codecs))
	for _, c := range d.codecs {
		sent = append(sent, s.typeOn(to, c))
	}
	offer, err := s.describe(to, sent, d.dir, "actpass")
	if err != nil {
		return Step{}, fmt.Errorf("%s offer: %w", from, err)
	}
	if from == LegCore && !s.negotiated {
		// Checks and early packets may come before the browser answers.
		s.fwd.setCoreRemote(d.addr)
	}
	s.pending = &pendingOffer{from: from, to: to, offer: d, sent: sent, src: d.codecs}
	return Step{Offer: offer}, nil
}

// OfferTo makes an offer of our own to leg `to` from the session as it is:
// for a request without SDP (an offerless re-INVITE), whose answer comes
// back through Answer. Before any negotiation (third-party call control:
// an INVITE without SDP) it offers every codec the bridge is allowed to
// carry, and the answer gives the offer for the other leg.
func (s *Session) OfferTo(to Leg) ([]byte, error) {
	if err := s.ready(); err != nil {
		return nil, fmt.Errorf("offer to %s: %w", to, err)
	}
	var sent, src []codec
	for _, p := range s.pairs {
		if !p.on(to).none() {
			sent, src = append(sent, p.on(to)), append(src, p.on(to.other()))
		}
	}
	if !s.negotiated {
		for _, c := range supportedCodecs {
			if s.engine.allowed.has(c) {
				sent = append(sent, c)
			}
		}
		src = sent
	}
	dir := s.legState(to.other()).dir
	if dir == directionUnknown {
		dir = directionSendRecv
	}
	offer, err := s.describe(to, sent, dir, "actpass")
	if err != nil {
		return nil, fmt.Errorf("offer to %s: %w", to, err)
	}
	s.pending = &pendingOffer{to: to, sent: sent, src: src}
	return offer, nil
}

// Answer takes leg `from`'s answer to our offer. Step.Answer is the answer
// for the leg whose offer we carried; Step.Offer, after an offer of our
// own, is the offer the other leg now needs (the answer changed its
// direction). A second answer to the same offer (a 18x, then the 2xx, or
// another fork) is applied again where the other leg need not know.
func (s *Session) Answer(from Leg, body []byte) (Step, error) {
	if err := s.readyFor(from); err != nil {
		return Step{}, fmt.Errorf("%s answer: %w", from, err)
	}
	p := s.pending
	if p == nil {
		return s.answerAgain(from, body)
	}
	d, err := s.readDescription(from, body, false)
	if err != nil {
		return Step{}, fmt.Errorf("%s answer: %w", from, err)
	}
	pairs := matchAnswer(from, p, d.codecs)
	if !hasAudio(pairs) {
		return Step{}, fmt.Errorf("%s answer: %w: answered %s", from, ErrNoCommonCodec, codecNames(d.codecs))
	}
	if from == LegCore {
		pairs = webEvents(pairs, p.src)
	}
	first := !s.negotiated
	var step Step
	if p.offer != nil {
		answer, err := s.answerOfferer(p, pairs, d)
		if err != nil {
			return Step{}, fmt.Errorf("%s answer: %w", from, err)
		}
		step.Answer = answer
		s.legState(p.from).dir = p.offer.dir
	}
	st := s.legState(from)
	// What the other leg was told is this leg's direction until now.
	toldOther := st.dir
	st.dir = d.dir
	if st.layout.media == nil {
		st.layout = d.layout()
	}
	if from == LegCore {
		s.fwd.setCoreRemote(d.addr)
	} else {
		s.ep.start(offerRole(d.web.setup), d.web.fingerprint)
		s.webRemote = d.web
	}
	s.pairs = pairs
	s.negotiated = true
	s.installPairs()
	s.settled, s.pending = p, nil
	if p.offer == nil && !p.followUp && (first || d.dir != toldOther) {
		// Our own offer's answer changed what the other leg must hear, or
		// (third-party call control) the other leg has heard nothing yet.
		offer, err := s.OfferTo(from.other())
		if err != nil {
			return Step{}, err
		}
		s.pending.followUp = true
		step.Offer = offer
	}
	return step, nil
}

// Rollback forgets our offer on leg `to`, which refused it: the session
// stays as it was (RFC 3261 14.2).
func (s *Session) Rollback(to Leg) {
	if s.pending != nil && s.pending.to == to {
		s.pending = nil
	}
}

// told is the direction we last declared to a leg: the other leg's.
func (s *Session) told(l Leg) direction { return s.legState(l.other()).dir }

// otherMustChange: does leg from's offer change what the other leg sees?
// A new direction does, and so does losing every audio codec in use.
func (s *Session) otherMustChange(from Leg, d *description) bool {
	if d.dir != s.legState(from).dir {
		return true
	}
	for _, p := range s.pairs {
		if !p.web.isDTMF() && containsCodec(d.codecs, p.on(from)) {
			return false
		}
	}
	return true
}

// answerAlone answers a re-offer the other leg need not hear of: the codecs
// in use that the offer still has, in the offer's payload types; the
// direction the other leg declared; the core's media followed, the
// browser's ICE restart answered with new credentials of ours.
func (s *Session) answerAlone(from Leg, d *description) ([]byte, error) {
	var pairs []pair
	for _, c := range d.codecs {
		for _, p := range s.pairs {
			if p.on(from).same(c) {
				pairs = append(pairs, p.with(from, c))
				break
			}
		}
	}
	if from == LegCore {
		pairs = webEvents(pairs, codecsOn(s.pairs, LegWeb))
	}
	answered := codecsOn(pairs, from)
	setup := ""
	if from == LegWeb {
		setup = s.followBrowser(d.web)
	}
	st := s.legState(from)
	st.layout = d.layout()
	answer, err := s.describe(from, answered, s.told(from), setup)
	if err != nil {
		return nil, err
	}
	if from == LegCore {
		s.fwd.setCoreRemote(d.addr)
	}
	s.pairs = pairs
	s.installPairs()
	return answer, nil
}

// followBrowser takes what a browser's re-offer says of its transport: new
// ICE credentials are an ICE restart, answered with new ones of ours; a new
// certificate or tls-id is a new DTLS association (RFC 8842), for which the
// offer's a=setup picks the roles again. It returns our a=setup.
func (s *Session) followBrowser(wt webTransport) string {
	old := s.webRemote
	s.webRemote = wt
	if wt.ufrag != old.ufrag {
		s.ep.restartICE()
	}
	if wt.fingerprint != old.fingerprint || wt.tlsID != old.tlsID {
		role, attr := answerRole(wt.setup)
		s.ep.newAssociation(role, wt.fingerprint)
		return attr
	}
	return s.ep.setup()
}

// answerOfferer writes the answer for the leg whose offer we carried, from
// the other leg's answer (pairs, d).
func (s *Session) answerOfferer(p *pendingOffer, pairs []pair, d *description) ([]byte, error) {
	x := p.from
	answered := codecsOn(pairs, x)
	s.legState(x).layout = p.offer.layout()
	setup := ""
	if x == LegWeb {
		wt := p.offer.web
		if !s.negotiated {
			role, attr := answerRole(wt.setup)
			s.ep.start(role, wt.fingerprint)
			setup = attr
			s.webRemote = wt
		} else {
			setup = s.followBrowser(wt)
		}
	} else {
		s.fwd.setCoreRemote(p.offer.addr)
	}
	return s.describe(x, answered, d.dir, setup)
}

// answerAgain takes a second answer to an offer already answered: a 2xx
// after a 18x, or another fork's. The leg that offered keeps the answer it
// has (a browser takes one answer); from the core, its address and payload
// types are followed.
func (s *Session) answerAgain(from Leg, body []byte) (Step, error) {
	p := s.settled
	if p == nil || p.to != from {
		return Step{}, fmt.Errorf("%s answer: %w: no offer outstanding", from, errWrongState)
	}
	if from == LegWeb {
		// A browser repeats its 18x answer in its 200: it has one DTLS
		// association, whatever else the repeat says.
		var step Step
		if p.from != LegUnknown {
			step.Answer = s.legState(p.from).origin.last
		}
		return step, nil
	}
	d, err := s.readDescription(from, body, false)
	if err != nil {
		return Step{}, fmt.Errorf("%s answer: %w", from, err)
	}
	pairs := matchAnswer(from, p, d.codecs)
	var kept []pair
	for _, np := range pairs {
		for _, old := range s.pairs {
			if old.web.same(np.web) {
				kept = append(kept, np)
				break
			}
		}
	}
	if hasAudio(kept) {
		s.pairs = webEvents(kept, p.src)
		s.installPairs()
	}
	s.fwd.setCoreRemote(d.addr)
	var step Step
	if p.from != LegUnknown {
		step.Answer = s.legState(p.from).origin.last
	}
	return step, nil
}

// matchAnswer pairs each codec leg `from` answered with what it stands for
// on the other leg, in the answer's order.
func matchAnswer(from Leg, p *pendingOffer, answered []codec) []pair {
	var out []pair
	for _, c := range answered {
		i := slices.IndexFunc(p.sent, c.same)
		if i < 0 || slices.ContainsFunc(out, func(q pair) bool { return q.on(from).same(c) }) {
			continue
		}
		var pr pair
		pr.set(from, c)
		pr.set(from.other(), p.src[i])
		pr.webAlt, pr.coreAlt = ptNone, ptNone
		if sentPT := p.sent[i].pt; sentPT != c.pt {
			pr.setAlt(from, sentPT)
		}
		out = append(out, pr)
	}
	return out
}

func hasAudio(pairs []pair) bool {
	return slices.ContainsFunc(pairs, func(p pair) bool { return !p.web.isDTMF() })
}

// codecsOn is the pairs' codecs as leg l has them.
func codecsOn(pairs []pair, l Leg) []codec {
	out := make([]codec, 0, len(pairs))
	for _, p := range pairs {
		if !p.on(l).none() {
			out = append(out, p.on(l))
		}
	}
	return out
}

// webEvents keeps the browser's telephone-event when the core took none at
// the clock of the browser's first audio codec: with it the browser can
// send digits (RTCDTMFSender), which the gateway turns into what the core
// takes (INFO or tones). web are the browser's codecs of the exchange.
func webEvents(pairs []pair, web []codec) []pair {
	var audio codec
	for _, p := range pairs {
		if !p.web.isDTMF() {
			audio = p.web
			break
		}
	}
	for _, p := range pairs {
		if p.web.isDTMF() && p.web.clock == audio.clock {
			return pairs
		}
	}
	for _, c := range web {
		if c.isDTMF() && c.clock == audio.clock {
			return append(pairs, pair{web: c, webAlt: ptNone, coreAlt: ptNone})
		}
	}
	return pairs
}

func (p pair) on(l Leg) codec {
	if l == LegWeb {
		return p.web
	}
	return p.core
}

func (p *pair) set(l Leg, c codec) {
	if l == LegWeb {
		p.web = c
	} else {
		p.core = c
	}
}

func (p *pair) setAlt(l Leg, pt uint8) {
	if l == LegWeb {
		p.webAlt = pt
	} else {
		p.coreAlt = pt
	}
}

// with returns p with leg l's side renumbered to c's payload type (a
// re-offer may change it), the old type kept as an alternate.
func (p pair) with(l Leg, c codec) pair {
	old := p.on(l)
	if c.fmtp == "" {
		c.fmtp = old.fmtp
	}
	p.set(l, c)
	if old.pt != c.pt {
		p.setAlt(l, old.pt)
	}
	return p
}

// typeOn is the codec c of the other leg as we offer it on leg `to`: the
// payload type already used for it on that leg (a mapping never changes
// within a session, RFC 3264 §8.3.2), else the browser's own number toward
// the core and ours toward the browser.
func (s *Session) typeOn(to Leg, c codec) codec {
	for _, p := range s.pairs {
		if p.on(to).same(c) {
			return p.on(to)
		}
	}
	if to == LegWeb {
		canon, _ := supported(c)
		return canon
	}
	return c
}

// installPairs swaps the forwarder's payload-type map for the current
// pairs and directions.
func (s *Session) installPairs() {
	m := newPTMap()
	m.eventsToWeb, m.eventsToCore = s.eventsToWeb, s.eventsToCore
	for _, p := range s.pairs {
		m.clock[p.web.pt&0x7f] = p.web.clock
		if p.web.isDTMF() {
			m.webEvents[p.web.pt&0x7f] = p.web.clock
			if p.webAlt != ptNone {
				m.webEvents[p.webAlt&0x7f] = p.web.clock
			}
		}
		if p.core.none() {
			continue // the browser's digits, taken by the gateway
		}
		m.link(p.web.pt, p.core.pt)
		if p.core.isDTMF() {
			m.coreEvents[p.core.pt&0x7f] = p.core.clock
			if p.coreAlt != ptNone {
				m.coreEvents[p.coreAlt&0x7f] = p.core.clock
			}
		}
		if p.coreAlt != ptNone {
			m.alsoFromCore(p.coreAlt, p.web.pt)
		}
		if p.webAlt != ptNone {
			m.alsoFromWeb(p.webAlt, p.core.pt)
		}
	}
	m.codec = audioCodec(s.pairs)
	web, core := s.web.dir, s.core.dir
	m.webToCoreOff = !web.sends() || !core.receives()
	m.coreToWebOff = !core.sends() || !web.receives()
	s.fwd.pts.Store(m)
	s.fwd.useCoreEvents(s.pairs)
}

func (s *Session) ready() error {
	if s.isClosed.Load() {
		return errSessionClosed
	}
	if s.pending != nil {
		return fmt.Errorf("%w: an offer to the %s leg is outstanding", errWrongState, s.pending.to)
	}
	return nil
}

func (s *Session) readyFor(from Leg) error {
	if s.isClosed.Load() {
		return errSessionClosed
	}
	if s.pending != nil && s.pending.to != from {
		return fmt.Errorf("%w: our offer went to the %s leg", errWrongState, s.pending.to)
	}
	return nil
}
