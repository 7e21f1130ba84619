package presence

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// sent is a request the relay sent, and the flow it went on ("" for the core).
type sent struct {
	flow string
	req  *sip.Request
}

// peer stands for the core or the browsers: it records what the relay
// sends and answers through answer (okAnswer when nil).
type peer struct {
	got     chan sent
	mu      sync.Mutex
	answer  func(sent) (*sip.Response, error)
	devices []Device
}

func newPeer() *peer { return &peer{got: make(chan sent, 64)} }

func (p *peer) do(s sent) (*sip.Response, error) {
	p.got <- s
	p.mu.Lock()
	answer := p.answer
	p.mu.Unlock()
	if answer == nil {
		return okAnswer(s.req), nil
	}
	return answer(s)
}

func (p *peer) setAnswer(f func(sent) (*sip.Response, error)) {
	p.mu.Lock()
	p.answer = f
	p.mu.Unlock()
}

type corePeer struct{ *peer }

func (c corePeer) Request(_ context.Context, req *sip.Request) (*sip.Response, error) {
	return c.do(sent{req: req})
}

func (c corePeer) Contact(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: "gw.test", Port: 5060}
}

type webPeer struct{ *peer }

func (w webPeer) Request(_ context.Context, flow string, req *sip.Request) (*sip.Response, error) {
	return w.do(sent{flow: flow, req: req})
}

func (w webPeer) Device(user string) (Device, bool) {
	for _, d := range w.devices {
		if d.Contact.User == user {
			return d, true
		}
	}
	return Device{}, false
}

func (w webPeer) Devices(sip.Uri) []Device { return w.devices }

// okAnswer is a peer's 200: its tag, and for a SUBSCRIBE the Expires asked
// (600 when none) and its Contact.
func okAnswer(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if !req.To().Params.Has("tag") {
		res.To().Params.Remove("tag")
		res.To().Params.Add("tag", "far")
	}
	if req.Method == sip.SUBSCRIBE {
		exp := "600"
		if h := req.GetHeader("Expires"); h != nil {
			exp = h.Value()
		}
		res.AppendHeader(sip.NewHeader("Expires", exp))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "far", Host: "far.test"}})
	}
	return res
}

// rig is a relay between a fake core and fake browsers: one device, "dev1"
// on flow f1, registered for every AoR.
type rig struct {
	t    *testing.T
	r    *Relay
	core *peer
	web  *peer
}

func newRig(t *testing.T, limits Limits) *rig {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	g := &rig{t: t, core: newPeer(), web: newPeer()}
	g.web.devices = []Device{{Flow: "f1", Contact: sip.Uri{Scheme: "sip", User: "dev1", Host: "b1.invalid",
		UriParams: sip.HeaderParams{{K: "transport", V: "ws"}}}}}
	g.r = New(webPeer{g.web}, corePeer{g.core}, webPeer{g.web}, limits, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	g.r.timing = timing{unit: time.Millisecond, grace: 50 * time.Millisecond}
	t.Cleanup(func() {
		g.r.Close()
		goleak.VerifyNone(t, opt)
	})
	return g
}

// send hands req to the relay from the web (flow f1) or the core and
// returns its reply channel; the reply must come once.
func (g *rig) send(fromWeb bool, req *sip.Request) chan *sip.Response {
	ch := make(chan *sip.Response, 2)
	reply := func(res *sip.Response) { ch <- res }
	if fromWeb {
		g.r.FromWeb("f1", req, reply)
	} else {
		g.r.FromCore(req, reply)
	}
	return ch
}

func (g *rig) do(fromWeb bool, req *sip.Request) *sip.Response {
	g.t.Helper()
	return await(g.t, g.send(fromWeb, req))
}

// peer is the web's side or the core's.
func (g *rig) peer(web bool) *peer {
	if web {
		return g.web
	}
	return g.core
}

// next is the next request the relay sent the web or the core.
func (g *rig) next(toWeb bool) sent {
	g.t.Helper()
	select {
	case s := <-g.peer(toWeb).got:
		return s
	case <-time.After(5 * time.Second):
		g.t.Fatalf("nothing reached the %s", map[bool]string{true: "web", false: "core"}[toWeb])
	}
	return sent{}
}

// quiet checks that nothing reaches a side for a while.
func (g *rig) quiet(toWeb bool, d time.Duration) {
	g.t.Helper()
	select {
	case s := <-g.peer(toWeb).got:
		g.t.Fatalf("unexpected %s", s.req.StartLine())
	case <-time.After(d):
	}
}

// waitCount waits until the relay holds n subscriptions.
func (g *rig) waitCount(n int) {
	g.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); g.r.subs.count() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			g.t.Fatalf("%d subscriptions, want %d", g.r.subs.count(), n)
		}
	}
}

// parse builds a request from header lines ("\n" separated).
func parse(t testing.TB, startLine string, lines []string, body string) *sip.Request {
	t.Helper()
	raw := startLine + "\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK" + sip.GenerateTagN(8) + "\r\nMax-Forwards: 70\r\n" +
		strings.Join(lines, "\r\n") + fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n", len(body)) + body
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return msg.(*sip.Request)
}

// subscribeReq is an initial SUBSCRIBE: from alice (tag s1) to bob at uri.
func subscribeReq(t testing.TB, uri, callID string, extra ...string) *sip.Request {
	lines := append([]string{"From: \"Alice\" <sip:alice@ims.test>;tag=s1", "To: <sip:bob@ims.test>", "Call-ID: " + callID,
		"CSeq: 1 SUBSCRIBE", "Contact: <sip:sub@sub.invalid;transport=ws>"}, extra...)
	return parse(t, "SUBSCRIBE "+uri+" SIP/2.0", lines, "")
}

// inDialog is the next request of a peer in the dialog a request it got
// or sent opened: from is its own side of that dialog (URI and tag).
func inDialogReq(t testing.TB, method, target, from, to, callID string, cseq int, extra []string, body string) *sip.Request {
	lines := append([]string{"From: " + from, "To: " + to, "Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method), "Contact: <sip:peer@peer.invalid>"}, extra...)
	return parse(t, string(method)+" "+target+" SIP/2.0", lines, body)
}

// notifyFrom is the notifier's NOTIFY in the dialog its SUBSCRIBE s opened
// (its tag "far").
func notifyFrom(t testing.TB, s *sip.Request, cseq int, state, body string) *sip.Request {
	extra := []string{"Event: " + s.GetHeader("Event").Value(), "Subscription-State: " + state}
	if body != "" {
		extra = append(extra, "Content-Type: application/pidf+xml")
	}
	return inDialogReq(t, "NOTIFY", s.Contact().Address.String(), s.To().Value()+";tag=far", s.From().Value(),
		s.CallID().Value(), cseq, extra, body)
}

// refreshOf is the subscriber's SUBSCRIBE in the dialog our 2xx to its
// initial SUBSCRIBE opened.
func refreshOf(t testing.TB, initial *sip.Request, ok *sip.Response, cseq int, expires string) *sip.Request {
	return inDialogReq(t, "SUBSCRIBE", ok.Contact().Address.String(), initial.From().Value(), ok.To().Value(),
		initial.CallID().Value(), cseq, []string{"Event: " + initial.GetHeader("Event").Value(), "Expires: " + expires}, "")
}

// count is how many subscriptions there are (tests).
func (t *subscriptions) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, set := range t.byFlow {
		n += len(set)
	}
	return n
}
