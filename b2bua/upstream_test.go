package b2bua

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/siplocate/dnstest"
)

// answering is how a raw core answers the gateway's OPTIONS.
type answering struct{ code atomic.Int32 } // 0: silence

// answerOptions answers every OPTIONS that reaches core with the code
// a says, until the test ends.
func answerOptions(t *testing.T, core *rawCore, a *answering) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			m, ok := core.next(20 * time.Millisecond)
			if !ok {
				continue
			}
			req, isReq := m.msg.(*sip.Request)
			if !isReq || req.Method != sip.OPTIONS {
				continue
			}
			if code := int(a.code.Load()); code != 0 {
				core.sendQuiet(reply(req, code, "Whatever", "t1", "", ""))
			}
		}
	}()
}

// twoCores are two raw cores answering OPTIONS 200 until their answering
// says otherwise.
func twoCores(t *testing.T) (first, second *rawCore, a, b *answering) {
	first, second, a, b = newRawCore(t), newRawCore(t), &answering{}, &answering{}
	a.code.Store(200)
	b.code.Store(200)
	answerOptions(t, first, a)
	answerOptions(t, second, b)
	return first, second, a, b
}

// TestUpstreamFailover: the keepalive passes over the proxy while it is
// silent or answers 503, sends requests outside a dialog to the fallback
// meanwhile, takes the proxy back when it answers, and /readyz's check
// fails only while none answers. Any answer but 503 counts (a 407 too).
func TestUpstreamFailover(t *testing.T) {
	first, second, a, b := twoCores(t)
	a.code.Store(407)
	g := newGatewayToWith(t, "sip:"+first.addr(), func(c *configs.Config) {
		c.Upstream.Fallback = []string{"sip:" + second.addr()}
		c.Upstream.KeepaliveInterval = 100 * time.Millisecond
	})
	current := func() string {
		for _, u := range g.Upstreams() {
			if u.Current {
				return u.URI
			}
		}
		return ""
	}
	destination := func() string {
		req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "bob", Host: "imsgate.test"})
		g.core.prepareOutOfDialog(req)
		return req.Destination()
	}
	waitUntil(t, "the proxy in use", func() bool { return current() == "sip:"+first.addr() })
	steps := []struct {
		name       string
		firstCode  int32
		secondCode int32
		want       string // the upstream in use; "" none answers
	}{
		{"proxy silent: the fallback", 0, 200, second.addr()},
		{"proxy back: the proxy", 200, 200, first.addr()},
		{"proxy 503: the fallback", 503, 200, second.addr()},
		{"proxy back again", 200, 200, first.addr()},
		{"none answers", 0, 0, ""},
		{"the fallback alone", 0, 404, second.addr()},
	}
	for _, st := range steps {
		a.code.Store(st.firstCode)
		b.code.Store(st.secondCode)
		waitUntil(t, st.name, func() bool {
			if st.want == "" {
				return g.UpstreamReady() != nil
			}
			return g.UpstreamReady() == nil && current() == "sip:"+st.want && destination() == st.want
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpstreamsByDNS: without upstream.proxy the servers of
// upstream.domain come from RFC 3263 (here SRV only: priority 10 first,
// 20 after) and fail over like fallbacks.
func TestUpstreamsByDNS(t *testing.T) {
	first, second, a, _ := twoCores(t)
	port := func(c *rawCore) string { _, p, _ := net.SplitHostPort(c.addr()); return p }
	server := dnstest.Serve(t,
		"_sip._udp.ims.test. 60 IN SRV 20 0 "+port(second)+" p2.ims.test.",
		"_sip._udp.ims.test. 60 IN SRV 10 0 "+port(first)+" p1.ims.test.",
		"p1.ims.test. 60 IN A 127.0.0.1",
		"p2.ims.test. 60 IN A 127.0.0.1")
	g := newGatewayToWith(t, "", func(c *configs.Config) {
		c.Upstream.Domain = "ims.test"
		c.Upstream.DNSServer = server
		c.Upstream.KeepaliveInterval = 100 * time.Millisecond
	})
	inUse := func(want string) func() bool {
		return func() bool {
			for _, u := range g.Upstreams() {
				if u.Current {
					return u.URI == "sip:"+want+";transport=udp"
				}
			}
			return false
		}
	}
	waitUntil(t, "the priority 10 server", inUse(first.addr()))
	if n := len(g.Upstreams()); n != 2 {
		t.Fatalf("%d upstreams, want 2: %+v", n, g.Upstreams())
	}
	a.code.Store(0)
	waitUntil(t, "the priority 20 server", inUse(second.addr()))
}

// TestUpstreamSilentOnRequest: a request outside a dialog that gets no
// answer at all marks its upstream down at once, not at the keepalive's
// next round (an hour away here); the next requests go to the fallback.
func TestUpstreamSilentOnRequest(t *testing.T) {
	first, second, _, _ := twoCores(t)
	g := newGatewayToWith(t, "sip:"+first.addr(), func(c *configs.Config) {
		c.Upstream.Fallback = []string{"sip:" + second.addr()}
		c.Upstream.KeepaliveInterval = time.Hour
	})
	waitUntil(t, "the first keepalive round", func() bool { return g.core.ups.last.Load() != nil })
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "bob", Host: "imsgate.test"})
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "imsgate.test"}, Params: sip.HeaderParams{{K: "tag", V: "a1"}}})
	req.AppendHeader(&sip.ToHeader{Address: req.Recipient})
	callID := sip.CallIDHeader("silent-1")
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := g.core.request(ctx, req); err == nil {
		t.Fatal("the MESSAGE the first core ignores got an answer")
	}
	for _, u := range g.Upstreams() {
		if u.Current != (u.URI == "sip:"+second.addr()) || u.Up != (u.URI == "sip:"+second.addr()) {
			t.Errorf("after the silent MESSAGE: %+v", g.Upstreams())
		}
	}
}
