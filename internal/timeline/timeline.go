// Package timeline keeps each call's story in time order, for the operator
// asking why a call failed: every SIP message of both legs (tapped on the
// wire, siptap), the call's state changes, its end and its quality, for the
// calls up now and the last ended ones. Memory is bounded three ways: events
// per call, the ended calls kept, and the bytes of whole SIP messages held
// over all calls (past it a message keeps its first line only).
package timeline

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/internal/siptap"
	"github.com/imsgate/imsgate/mediabridge"
)

// Bounds.
const (
	maxEvents = 300 // per call; later ones are counted only
	// maxMessageBytes is what one event keeps of a SIP message.
	maxMessageBytes = 8 << 10
	// messageBudget is the bytes of SIP messages kept over all calls.
	messageBudget = 64 << 20
	// Messages of an INVITE transaction whose call is not known yet (a
	// browser's INVITE is tapped before the call exists) wait this long,
	// this many per Call-ID and this many Call-IDs at most (the oldest go
	// first); their bytes count against the budget.
	pendingFor    = 32 * time.Second
	pendingEvents = 16
	pendingIDs    = 1024
	// A first line and a Call-ID are kept up to this long.
	maxFirstLine = 256
	maxCallID    = 256
	// maxQoSEvents is how many quality samples a call keeps; later ones
	// replace the last, so a long call keeps its start and its latest.
	maxQoSEvents = 60
)

// Event is one thing that happened to a call.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // sip, state, media, ws, qos, end
	Leg  string    `json:"leg,omitempty"`
	// Dir is in (to the gateway) or out, From and To the message's
	// addresses as it went.
	Dir       string `json:"dir,omitempty"`
	Transport string `json:"transport,omitempty"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	// Text is a SIP message's first line, a state's name, an end's reason.
	Text    string `json:"text"`
	Message string `json:"message,omitempty"` // the SIP message, as much as was kept
}

// Call is one call's story.
type Call struct {
	ID         string     `json:"id"`
	WebCallID  string     `json:"web_call_id"`
	CoreCallID string     `json:"core_call_id"`
	Origin     string     `json:"origin"`
	Caller     string     `json:"caller"`
	Callee     string     `json:"callee"`
	Started    time.Time  `json:"started"`
	State      string     `json:"state"`
	Ended      *time.Time `json:"ended,omitempty"`
	EndReason  string     `json:"end_reason,omitempty"`
	EndedBy    string     `json:"ended_by,omitempty"`
	Status     int        `json:"status,omitempty"`
	// QoS is the quality at the end, or for a call up its last sample.
	QoS           *mediabridge.QoS `json:"qos,omitempty"`
	Events        []Event          `json:"events,omitempty"`
	DroppedEvents int              `json:"dropped_events,omitempty"`

	kept      int // bytes of messages this call holds in the budget
	qosEvents int
}

type pending struct {
	first  time.Time
	events []Event
	kept   int // bytes of messages, out of the budget
}

// qosEvery is how often the calls up are sampled for their quality.
const qosEvery = 5 * time.Second

// Store holds the timelines. It is a siptap.Sink and a b2bua.Observer
// (and NoteObserver).
type Store struct {
	keep int // ended calls kept
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	active   map[string]*Call
	ended    []*Call          // oldest first
	byCallID map[string]*Call // either leg's Call-ID, for active and kept calls
	pending  map[string]*pending
	waiting  []string // pending's Call-IDs, oldest first (some may be gone)
	budget   int      // bytes of messages still to be kept
}

// New keeps the active calls and the last keep ended ones.
func New(keep int) *Store {
	return &Store{keep: keep, active: map[string]*Call{}, byCallID: map[string]*Call{},
		pending: map[string]*pending{}, budget: messageBudget}
}

// SampleQoS notes each call's quality every qosEvery, as live gives it (by
// call id), until Close.
func (s *Store) SampleQoS(live func() map[string]mediabridge.QoS) {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(qosEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case at := <-tick.C:
				s.sampled(live(), at)
			}
		}
	}()
}

// Close stops the sampling.
func (s *Store) Close() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
}

// sampled files one round of samples, for the calls whose media flows.
func (s *Store) sampled(live map[string]mediabridge.QoS, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, q := range live {
		c := s.active[id]
		if c == nil || (q.Web.MOS == 0 && q.Core.MOS == 0) {
			continue
		}
		c.QoS = &q
		s.add(c, Event{At: at, Kind: "qos", Text: "web " + legText(q.Web) + "; core " + legText(q.Core)}, nil)
	}
}

// legText is a leg's quality in a line.
func legText(q mediabridge.LegQoS) string {
	if q.MOS == 0 {
		return "no media"
	}
	text := fmt.Sprintf("MOS %.2f, loss %.1f%% in / %.1f%% out, jitter %.1f / %.1f ms", q.MOS,
		q.LossPercent, q.RemoteLossPercent, q.JitterMs, q.RemoteJitterMs)
	if q.RTTMs > 0 {
		text += fmt.Sprintf(", RTT %.0f ms", q.RTTMs)
	}
	return text
}

// CallNoted files a call's note (its media, its browser's connection).
func (s *Store) CallNoted(call b2bua.CallInfo, note b2bua.CallNote, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.active[call.ID]; c != nil {
		s.add(c, Event{At: at, Kind: note.Kind, Text: note.Text}, nil)
	}
}

// SIPMessage files a message under its call, or waits for the call.
func (s *Store) SIPMessage(m *siptap.Message) {
	h := m.Head
	if !m.HasHead || h.CallID == "" || len(h.CallID) > maxCallID {
		return
	}
	if len(h.First) > maxFirstLine {
		h.First = h.First[:maxFirstLine]
	}
	ev := Event{At: m.At, Kind: "sip", Leg: m.Leg.String(), Dir: m.Dir.String(), Transport: m.Transport,
		From: m.Remote.String(), To: m.Local.String(), Text: h.First}
	if m.Dir == siptap.Out {
		ev.From, ev.To = ev.To, ev.From
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byCallID[h.CallID]
	if c != nil && c.Ended != nil && h.Method == "INVITE" && h.Status == 0 {
		// A new INVITE on an ended call's Call-ID is the next call: a
		// browser answering a 401/407 keeps its Call-ID (RFC 3261
		// §22.2). It and what follows wait for that call.
		delete(s.byCallID, h.CallID)
		c = nil
	}
	if c != nil {
		s.add(c, ev, m.Raw)
		return
	}
	// Only an INVITE's messages can be a call that does not exist yet.
	if h.Method == "INVITE" || h.Method == "CANCEL" || h.Method == "ACK" {
		s.wait(h.CallID, ev, m.Raw)
	}
}

// add appends ev to c, with as much of raw as the budget allows. A call's
// end is always kept; its quality samples past maxQoSEvents replace the
// last one.
func (s *Store) add(c *Call, ev Event, raw []byte) {
	if ev.Kind == "qos" {
		if c.qosEvents >= maxQoSEvents {
			for i := len(c.Events) - 1; i >= 0; i-- {
				if c.Events[i].Kind == "qos" {
					c.Events[i] = ev
					return
				}
			}
		}
		c.qosEvents++
	}
	if len(c.Events) >= maxEvents && ev.Kind != "end" {
		c.DroppedEvents++
		return
	}
	if n := min(len(raw), maxMessageBytes); n > 0 && n <= s.budget {
		ev.Message = string(raw[:n])
		s.budget -= n
		c.kept += n
	}
	// In time order: a state is stamped when it began, which can be before
	// a message the gateway sent on the way to it.
	i := len(c.Events)
	for i > 0 && c.Events[i-1].At.After(ev.At) {
		i--
	}
	c.Events = slices.Insert(c.Events, i, ev)
}

func (s *Store) wait(callID string, ev Event, raw []byte) {
	now := time.Now()
	p := s.pending[callID]
	// The oldest wait longest: the expired go, and the oldest make room
	// for a new Call-ID.
	for len(s.waiting) > 0 {
		id := s.waiting[0]
		old := s.pending[id]
		full := p == nil && len(s.pending) >= pendingIDs
		if old != nil && now.Sub(old.first) <= pendingFor && !full {
			break
		}
		s.waiting = s.waiting[1:]
		if old != nil {
			s.drop(id, old)
		}
	}
	p = s.pending[callID] // its own may have expired just now
	if p == nil {
		p = &pending{first: now}
		s.pending[callID] = p
		s.waiting = append(s.waiting, callID)
	}
	if len(p.events) < pendingEvents {
		if n := min(len(raw), maxMessageBytes); n <= s.budget {
			ev.Message = string(raw[:n])
			s.budget -= n
			p.kept += n
		}
		p.events = append(p.events, ev)
	}
}

// drop forgets messages that waited for a call, giving their bytes back.
func (s *Store) drop(id string, p *pending) {
	delete(s.pending, id)
	s.budget += p.kept
}

// CallStateChanged starts a call's timeline at its first state, taking the
// messages that came before it, and notes each state.
func (s *Store) CallStateChanged(call b2bua.CallInfo, state b2bua.CallState, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.active[call.ID]
	if c == nil {
		c = &Call{ID: call.ID, WebCallID: call.WebCallID, CoreCallID: call.CoreCallID, Origin: call.Origin.String(),
			Caller: call.Caller, Callee: call.Callee, Started: call.Started}
		s.active[call.ID] = c
		var early []Event
		for _, id := range []string{call.WebCallID, call.CoreCallID} {
			if id == "" {
				continue
			}
			s.byCallID[id] = c
			if p := s.pending[id]; p != nil {
				early = append(early, p.events...)
				s.drop(id, p)
			}
		}
		sort.SliceStable(early, func(i, j int) bool { return early[i].At.Before(early[j].At) })
		for _, ev := range early {
			raw := []byte(ev.Message)
			ev.Message = ""
			s.add(c, ev, raw)
		}
	}
	c.State = state.String()
	s.add(c, Event{At: at, Kind: "state", Text: state.String()}, nil)
}

// CallEnded notes the end and its quality, and keeps the call among the
// ended ones.
func (s *Store) CallEnded(call b2bua.CallInfo, cause b2bua.Cause, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.active[call.ID]
	if c == nil {
		return
	}
	delete(s.active, call.ID)
	end := at
	c.Ended, c.State = &end, b2bua.StateEnded.String()
	c.EndReason, c.EndedBy, c.Status = cause.Reason.String(), cause.By.String(), cause.Status
	text := cause.Reason.String() + " by " + cause.By.String()
	if cause.Err != nil {
		text += ": " + cause.Err.Error()
	}
	s.add(c, Event{At: at, Kind: "end", Text: text}, nil)
	if call.Summary != nil {
		q := call.Summary.QoS
		c.QoS = &q
	}
	s.ended = append(s.ended, c)
	if len(s.ended) > s.keep {
		old := s.ended[0]
		s.ended = s.ended[1:]
		s.forget(old)
	}
}

// forget drops an ended call for good, giving its bytes back.
func (s *Store) forget(c *Call) {
	for _, id := range []string{c.WebCallID, c.CoreCallID} {
		if s.byCallID[id] == c {
			delete(s.byCallID, id)
		}
	}
	s.budget += c.kept
}

// Summary is a call without its events.
func (c *Call) summary() Call {
	out := *c
	out.Events = nil
	return out
}

// List is the active calls, oldest first, and the ended ones, latest first,
// without their events.
func (s *Store) List() (active, ended []Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.active {
		active = append(active, c.summary())
	}
	sort.Slice(active, func(i, j int) bool { return active[i].Started.Before(active[j].Started) })
	for i := len(s.ended) - 1; i >= 0; i-- {
		ended = append(ended, s.ended[i].summary())
	}
	return active, ended
}

// Get is a call's whole timeline, by the gateway's id or either Call-ID.
func (s *Store) Get(id string) (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.active[id]
	if c == nil {
		c = s.byCallID[id]
	}
	if c == nil {
		for _, e := range s.ended {
			if e.ID == id {
				c = e
			}
		}
	}
	if c == nil {
		return Call{}, false
	}
	out := *c
	out.Events = append([]Event(nil), c.Events...)
	return out, true
}
