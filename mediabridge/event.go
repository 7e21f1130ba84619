package mediabridge

// EventKind is a change on a session's browser side that its call may act
// on. Zero is Unknown.
type EventKind int

const (
	EventUnknown     EventKind = iota
	EventConnected             // ICE checked and DTLS-SRTP keys installed: media can flow (Event.Transport)
	EventFailed                // the DTLS handshake or key setup failed: no media will flow
	EventConsentLost           // the browser's address sent nothing for 30 s (RFC 7675 consent expired)
	EventDTMF                  // a digit on the media path (Event.Digit, From, Form), once per key press
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventFailed:
		return "failed"
	case EventConsentLost:
		return "consent_lost"
	case EventDTMF:
		return "dtmf"
	}
	return "unknown"
}

// Event is what a session reports to its call.
type Event struct {
	Kind  EventKind
	Err   error
	Digit DTMFDigit // EventDTMF: the digit, the leg that sent it, and how
	From  Leg
	Form  DTMFForm
	// Transport is, for EventConnected, what the browser's media came on
	// (Session.WebPath).
	Transport Transport
}

// OnEvent sets where the session reports its events. Set it before the
// session negotiates; f runs on a media goroutine and must not block.
func (s *Session) OnEvent(f func(Event)) {
	s.ep.onEvent = f
	s.fwd.onDigit = func(from Leg, form DTMFForm, d DTMFDigit) {
		f(Event{Kind: EventDTMF, Digit: d, From: from, Form: form})
	}
}

func (ep *webEndpoint) report(ev Event) {
	if ep.onEvent != nil {
		ep.onEvent(ev)
	}
}
