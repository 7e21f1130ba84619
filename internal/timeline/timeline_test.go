package timeline

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/internal/siptap"
	"github.com/imsgate/imsgate/mediabridge"
)

func sipMsg(at time.Time, leg siptap.Leg, dir siptap.Direction, first, callID string, size int) *siptap.Message {
	raw := first + "\r\nCall-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n\r\n"
	raw += strings.Repeat("x", max(0, size-len(raw)))
	m := &siptap.Message{At: at, Leg: leg, Dir: dir, Transport: "WS",
		Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("127.0.0.9:40000"), Raw: []byte(raw)}
	m.Head, m.HasHead = siptap.ParseHead(m.Raw) // as the tap's Emit does
	return m
}

func info(id string) b2bua.CallInfo {
	return b2bua.CallInfo{ID: id, WebCallID: "w-" + id, CoreCallID: "c-" + id, Started: time.Now()}
}

// TestMessagesBeforeTheCall: the browser's INVITE is tapped before the
// call exists; it waits and is filed in time order once the call starts,
// by either Call-ID.
func TestMessagesBeforeTheCall(t *testing.T) {
	s := New(10)
	t0 := time.Now()
	s.SIPMessage(sipMsg(t0, siptap.LegWeb, siptap.In, "INVITE sip:a SIP/2.0", "w-1", 0))
	s.SIPMessage(sipMsg(t0.Add(2*time.Millisecond), siptap.LegCore, siptap.Out, "INVITE sip:a SIP/2.0", "c-1", 0))
	s.CallStateChanged(info("1"), b2bua.StateCalling, t0.Add(time.Millisecond))
	s.SIPMessage(sipMsg(t0.Add(3*time.Millisecond), siptap.LegCore, siptap.In, "SIP/2.0 200 OK", "c-1", 0))
	for _, id := range []string{"1", "w-1", "c-1"} {
		c, ok := s.Get(id)
		if !ok {
			t.Fatalf("call not found by %s", id)
		}
		var got []string
		for _, ev := range c.Events {
			got = append(got, ev.Kind+":"+ev.Text)
		}
		want := "sip:INVITE sip:a SIP/2.0 state:calling sip:INVITE sip:a SIP/2.0 sip:SIP/2.0 200 OK"
		if strings.Join(got, " ") != want {
			t.Errorf("by %s: %v, want %s", id, got, want)
		}
	}
	if _, ok := s.Get("nobody"); ok {
		t.Error("found a call that never was")
	}
}

// TestBounds: events per call, ended calls kept, the bytes of messages
// held over all calls, and the messages waiting for a call are all bounded.
func TestBounds(t *testing.T) {
	s := New(3)
	now := time.Now()
	s.CallStateChanged(info("big"), b2bua.StateCalling, now)
	for range maxEvents + 50 {
		s.SIPMessage(sipMsg(now, siptap.LegWeb, siptap.In, "INFO sip:a SIP/2.0", "w-big", maxMessageBytes*2))
	}
	c, _ := s.Get("big")
	if len(c.Events) != maxEvents || c.DroppedEvents != 51 {
		t.Errorf("%d events, %d dropped; want %d and 51", len(c.Events), c.DroppedEvents, maxEvents)
	}
	if n := len(c.Events[1].Message); n != maxMessageBytes {
		t.Errorf("a message kept %d bytes, want %d", n, maxMessageBytes)
	}
	// The budget: with it spent, messages keep their first line only.
	s.budget = 0
	s.CallStateChanged(info("poor"), b2bua.StateCalling, now)
	s.SIPMessage(sipMsg(now, siptap.LegWeb, siptap.In, "BYE sip:a SIP/2.0", "w-poor", 100))
	if c, _ := s.Get("poor"); c.Events[1].Message != "" || c.Events[1].Text != "BYE sip:a SIP/2.0" {
		t.Errorf("over the budget: %+v", c.Events[1])
	}
	// Ended calls: the oldest go, and give their bytes back.
	s.CallEnded(info("big"), b2bua.Cause{}, now)
	for i := range 3 {
		id := fmt.Sprint("e", i)
		s.CallStateChanged(info(id), b2bua.StateCalling, now)
		s.CallEnded(info(id), b2bua.Cause{}, now)
	}
	if _, ok := s.Get("big"); ok {
		t.Error("the oldest ended call is still kept")
	}
	if _, ok := s.Get("w-big"); ok {
		t.Error("the oldest ended call is still found by its Call-ID")
	}
	// It held maxEvents-1 messages (its first event is the state).
	if want := (maxEvents - 1) * maxMessageBytes; s.budget != want {
		t.Errorf("budget %d after the big call went, want its %d bytes back", s.budget, want)
	}
	active, ended := s.List()
	if len(active) != 1 || len(ended) != 3 || ended[0].ID != "e2" {
		t.Errorf("list: %d active, %d ended (first %s)", len(active), len(ended), ended[0].ID)
	}
	// INVITEs of no call yet wait, bounded in Call-IDs (the oldest go) and
	// per Call-ID; what is no INVITE's never waits.
	for i := range pendingIDs + 10 {
		for range pendingEvents + 5 {
			s.SIPMessage(sipMsg(now, siptap.LegWeb, siptap.In, "INVITE sip:a SIP/2.0", fmt.Sprint("x", i), 10))
		}
	}
	s.SIPMessage(sipMsg(now, siptap.LegWeb, siptap.In, "OPTIONS sip:a SIP/2.0", "options", 10))
	if len(s.pending) != pendingIDs || s.pending["x9"] != nil || len(s.pending["x10"].events) != pendingEvents || s.pending["options"] != nil {
		t.Errorf("pending: %d Call-IDs (x9 %v, options %v), %d events for x10", len(s.pending), s.pending["x9"] != nil, s.pending["options"] != nil, len(s.pending["x10"].events))
	}
}

// TestLongCall: a long call's quality samples past maxQoSEvents replace the
// last one, and its end is kept even when its events are full.
func TestLongCall(t *testing.T) {
	s := New(10)
	now := time.Now()
	s.CallStateChanged(info("long"), b2bua.StateCalling, now)
	q := mediabridge.QoS{Web: mediabridge.LegQoS{MOS: 4.4}}
	for i := range maxQoSEvents + 40 {
		s.sampled(map[string]mediabridge.QoS{"long": q}, now.Add(time.Duration(i)*qosEvery))
	}
	c, _ := s.Get("long")
	if len(c.Events) != 1+maxQoSEvents || !c.Events[maxQoSEvents].At.Equal(now.Add((maxQoSEvents+39)*qosEvery)) {
		t.Errorf("%d events, the last sample at %v", len(c.Events), c.Events[len(c.Events)-1].At)
	}
	for range maxEvents {
		s.SIPMessage(sipMsg(now.Add(time.Hour), siptap.LegWeb, siptap.In, "INFO sip:a SIP/2.0", "w-long", 10))
	}
	s.CallEnded(info("long"), b2bua.Cause{}, now.Add(2*time.Hour))
	c, _ = s.Get("long")
	if last := c.Events[len(c.Events)-1]; last.Kind != "end" {
		t.Errorf("the last event of a full call is %+v, want its end", last)
	}
}

// TestSamplesAndNotes: a call's notes and quality samples join its
// timeline; a call without media yet gets no sample.
func TestSamplesAndNotes(t *testing.T) {
	s := New(10)
	now := time.Now()
	s.CallStateChanged(info("1"), b2bua.StateCalling, now)
	s.CallStateChanged(info("2"), b2bua.StateCalling, now)
	s.CallNoted(info("1"), b2bua.CallNote{Kind: "media", Text: "ICE and DTLS up"}, now.Add(time.Second))
	q := mediabridge.QoS{Web: mediabridge.LegQoS{MOS: 3.9, LossPercent: 5, JitterMs: 4.5, RTTMs: 40}}
	s.sampled(map[string]mediabridge.QoS{"1": q, "2": {}, "gone": q}, now.Add(2*time.Second))
	c, _ := s.Get("1")
	if len(c.Events) != 3 || c.Events[1].Kind != "media" || c.Events[2].Kind != "qos" || c.QoS == nil {
		t.Fatalf("events %+v, qos %v", c.Events, c.QoS)
	}
	want := "web MOS 3.90, loss 5.0% in / 0.0% out, jitter 4.5 / 0.0 ms, RTT 40 ms; core no media"
	if c.Events[2].Text != want {
		t.Errorf("sample %q, want %q", c.Events[2].Text, want)
	}
	if c2, _ := s.Get("2"); len(c2.Events) != 1 || c2.QoS != nil {
		t.Errorf("a call without media was sampled: %+v", c2.Events)
	}
}

// TestChallengedThenAnswered: a browser answers the core's 407 with a new
// INVITE on the same Call-ID; it is the next call's, not the ended one's.
func TestChallengedThenAnswered(t *testing.T) {
	s := New(10)
	t0 := time.Now()
	first := b2bua.CallInfo{ID: "1", WebCallID: "w", CoreCallID: "c1", Started: t0}
	s.SIPMessage(sipMsg(t0, siptap.LegWeb, siptap.In, "INVITE sip:a SIP/2.0", "w", 0))
	s.CallStateChanged(first, b2bua.StateCalling, t0)
	s.SIPMessage(sipMsg(t0.Add(time.Millisecond), siptap.LegWeb, siptap.Out, "SIP/2.0 407 Proxy Authentication Required", "w", 0))
	s.CallEnded(first, b2bua.Cause{}, t0.Add(time.Millisecond))
	s.SIPMessage(sipMsg(t0.Add(2*time.Millisecond), siptap.LegWeb, siptap.In, "ACK sip:a SIP/2.0", "w", 0))
	s.SIPMessage(sipMsg(t0.Add(3*time.Millisecond), siptap.LegWeb, siptap.In, "INVITE sip:a SIP/2.0", "w", 0))
	s.SIPMessage(sipMsg(t0.Add(4*time.Millisecond), siptap.LegWeb, siptap.Out, "SIP/2.0 100 Trying", "w", 0))
	second := b2bua.CallInfo{ID: "2", WebCallID: "w", CoreCallID: "c2", Started: t0.Add(3 * time.Millisecond)}
	s.CallStateChanged(second, b2bua.StateCalling, t0.Add(3*time.Millisecond))
	texts := func(id string) string {
		c, _ := s.Get(id)
		var out []string
		for _, ev := range c.Events {
			out = append(out, ev.Text)
		}
		return strings.Join(out, ", ")
	}
	if got, want := texts("1"), "INVITE sip:a SIP/2.0, calling, SIP/2.0 407 Proxy Authentication Required, unknown by unknown, ACK sip:a SIP/2.0"; got != want {
		t.Errorf("the challenged call: %s\nwant %s", got, want)
	}
	if got, want := texts("2"), "INVITE sip:a SIP/2.0, calling, SIP/2.0 100 Trying"; got != want {
		t.Errorf("the answered call: %s\nwant %s", got, want)
	}
	if c, _ := s.Get("w"); c.ID != "2" {
		t.Errorf("the Call-ID finds call %s, want the latest", c.ID)
	}
}
