package b2bua

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
)

// TestMassDisconnect registers many browsers, closes all their flows at
// once and checks that each binding is removed at the core exactly once,
// at the configured pace. IMSGATE_MASS_FLOWS and IMSGATE_MASS_RATE scale it
// up (the figures in the closing note came from 10,000 flows).
func TestMassDisconnect(t *testing.T) {
	flows, rate := 300, 1000.0
	if v, err := strconv.Atoi(os.Getenv("IMSGATE_MASS_FLOWS")); err == nil && v > 0 {
		flows = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("IMSGATE_MASS_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	core := newRawCore(t)
	g := newGatewayTo(t, core, func(c *configs.Config) { c.Upstream.UnregisterRate = rate })
	registered, unregistered := make(chan struct{}, flows), make(chan time.Time, flows)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		seen := map[string]bool{} // a retransmitted REGISTER is answered, not counted
		for {
			select {
			case <-stop:
				return
			case m := <-core.msgs:
				req, ok := m.msg.(*sip.Request)
				if !ok || req.Method != sip.REGISTER {
					continue
				}
				exp := expiresOf(req, req.Contact(), 600)
				core.send(reply(req, 200, "OK", "r", fmt.Sprintf("Contact: %s;expires=%d\r\n", req.Contact().Value(), exp), ""))
				key := callIDOf(req) + req.CSeq().Value()
				if seen[key] {
					continue
				}
				seen[key] = true
				if exp == 0 {
					unregistered <- time.Now()
				} else {
					registered <- struct{}{}
				}
			}
		}
	}()
	// Registered in waves, as browsers arrive; the test's short T1 would
	// time out thousands of REGISTERs sent in one burst.
	const wave = 200
	fakes := make([]*fakeFlow, flows)
	for i := range fakes {
		fakes[i] = newFakeFlow(fmt.Sprintf("mass%d", i))
		raw := strings.ReplaceAll(deviceRegister("alice", fmt.Sprint(i)), "reg-call-1", fmt.Sprintf("reg-%d", i))
		g.handleWeb(fakes[i], parseReq(t, raw))
		if (i+1)%wave == 0 || i == flows-1 {
			for n := i%wave + 1; n > 0; n-- {
				select {
				case <-registered:
				case <-time.After(30 * time.Second):
					t.Fatalf("only %d bindings registered", g.Bindings())
				}
			}
		}
	}
	waitBindings(t, g, flows)

	start := time.Now()
	for _, f := range fakes {
		g.flowClosed(f.name)
	}
	cleanup := time.Since(start)
	if g.Bindings() != 0 {
		t.Fatalf("%d bindings left after the flows closed", g.Bindings())
	}
	var first, last time.Time
	for i := 0; i < flows; i++ {
		select {
		case at := <-unregistered:
			if i == 0 {
				first = at
			}
			last = at
		case <-time.After(time.Duration(float64(flows)/rate*float64(time.Second)) + 10*time.Second):
			t.Fatalf("only %d of %d unregisters reached the core", i, flows)
		}
	}
	span := last.Sub(first)
	t.Logf("%d flows closed: tables cleaned in %v; %d unregisters reached the core over %v (%.0f/s, configured %.0f/s)",
		flows, cleanup, flows, span, float64(flows-1)/span.Seconds(), rate)
	select {
	case <-unregistered:
		t.Fatal("a binding was unregistered twice")
	case <-time.After(200 * time.Millisecond):
	}
}

func waitBindings(t *testing.T, g *Gateway, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.Bindings() != n {
		if time.Now().After(deadline) {
			t.Fatalf("bindings = %d, want %d", g.Bindings(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
