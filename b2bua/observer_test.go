package b2bua

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	states []CallState
	infos  []CallInfo
	ended  chan Cause
}

func (r *recorder) CallStateChanged(info CallInfo, s CallState, _ time.Time) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.infos = append(r.infos, info)
	r.mu.Unlock()
}

func (r *recorder) CallEnded(_ CallInfo, c Cause, _ time.Time) { r.ended <- c }

// TestObserverSeesStatesAndCause: a call's start, state changes and typed
// end reach the observer, with the times of its ringing and answer.
func TestObserverSeesStatesAndCause(t *testing.T) {
	g, core, f := newWebRig(t)
	rec := &recorder{ended: make(chan Cause, 1)}
	g.observer = rec
	callToCore(t, g, core, f)
	g.handleWeb(f, webInDialog(t, f, "BYE", ""))
	b := core.expect(sip.BYE)
	core.send(reply(b, 200, "OK", "", "", ""))
	select {
	case c := <-rec.ended:
		if c.Reason != EndHangup || c.By != SideWeb {
			t.Fatalf("cause %v, want hangup by web", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the observer heard of no end")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := states(rec.states); got != "calling,early,confirmed" {
		t.Fatalf("states %s, want calling,early,confirmed", got)
	}
	calling, early, confirmed := rec.infos[0], rec.infos[1], rec.infos[2]
	if calling.Started.IsZero() || !calling.Ringing.IsZero() || !calling.Answered.IsZero() {
		t.Errorf("at the start: %+v", calling)
	}
	if early.Ringing.Before(early.Started) || !early.Answered.IsZero() {
		t.Errorf("when ringing: %+v", early)
	}
	if confirmed.Ringing != early.Ringing || confirmed.Answered.Before(confirmed.Ringing) {
		t.Errorf("when answered: %+v", confirmed)
	}
}

// webInDialog is the browser's request in the dialog callToCore made.
func webInDialog(t *testing.T, f *fakeFlow, method, extra string) *sip.Request {
	t.Helper()
	raw := method + " sip:x@imsgate.invalid SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK" + strings.ToLower(method) + "1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=f1\r\nTo: <sip:bob@imsgate.test>;tag=" + webTagOf(t, f) + "\r\n" +
		"Call-ID: web-call-1\r\nCSeq: 2 " + method + "\r\n" + extra + "Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// webTagOf is our To tag in the answer the fake browser received.
func webTagOf(t *testing.T, f *fakeFlow) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.out {
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
			return tagOf(res.To().Params)
		}
	}
	t.Fatal("the browser got no 200")
	return ""
}

func states(ss []CallState) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.String())
	}
	return strings.Join(out, ",")
}

// TestRegistersOfAFlowInOrder: a browser's second REGISTER reaches the
// core only once the first has its answer.
func TestRegistersOfAFlowInOrder(t *testing.T) {
	g, core, f := newRawRig(t)
	g.handleWeb(f, parseReq(t, jssipRegister))
	g.handleWeb(f, parseReq(t, strings.Replace(jssipRegister, "CSeq: 2 REGISTER", "CSeq: 3 REGISTER", 1)))
	first := core.expect(sip.REGISTER)
	// Until the first is answered only its retransmissions may come.
	for window := time.Now().Add(150 * time.Millisecond); time.Now().Before(window); {
		m, ok := core.next(time.Until(window))
		if !ok {
			break
		}
		if req, isReq := m.msg.(*sip.Request); !isReq || branchOf(req) != branchOf(first) {
			t.Fatalf("core got %s before the first REGISTER was answered", startLine(m.msg))
		}
	}
	core.send(reply(first, 200, "OK", "r1", "Contact: "+first.Contact().Value()+";expires=600\r\n", ""))
	second := core.expect(sip.REGISTER)
	for branchOf(second) == branchOf(first) { // a late retransmission of the first
		second = core.expect(sip.REGISTER)
	}
	if cseqNo(second) <= cseqNo(first) {
		t.Fatalf("upstream CSeq %d after %d", cseqNo(second), cseqNo(first))
	}
	core.send(reply(second, 200, "OK", "r1", "Contact: "+second.Contact().Value()+";expires=600\r\n", ""))
	for i := 0; i < 2; i++ {
		if res := f.next(t); res.StatusCode != 200 {
			t.Fatalf("browser got %d", res.StatusCode)
		}
	}
}

// TestAbandonedChallengeSwept: a binding whose challenge the browser never
// answered is forgotten after 64·T1; an active one stays until it expires.
func TestAbandonedChallengeSwept(t *testing.T) {
	r := newRegistrar()
	req := parseReq(t, jssipRegister)
	abandoned, _ := r.get("flow1", req.To().Address, contacts(req)[0], 10)
	active, _ := r.get("flow2", req.To().Address, contacts(req)[0], 10)
	active.active, active.expires = true, time.Now().Add(time.Hour)
	now := time.Now().Add(64*sip.T1 + time.Second)
	got := r.stale(now)
	if len(got) != 1 || got[0] != abandoned {
		t.Fatalf("stale = %v, want only the abandoned binding", got)
	}
}
