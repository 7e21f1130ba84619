package webua

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// callPair connects alice and bob through a relay.
func callPair(t *testing.T) (alice, bob *UA) {
	t.Helper()
	relay := newRelay(t)
	alice = dialUA(t, relay.url, "sip:alice@imsgate.test")
	bob = dialUA(t, relay.url, "sip:bob@imsgate.test")
	// The relay forwards only to connections it already has.
	waitFor(t, "relay to see both", func() bool { return len(relay.others(nil)) == 2 })
	return alice, bob
}

func nextIncoming(t *testing.T, ua *UA) *Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	select {
	case c, ok := <-ua.Incoming():
		if !ok {
			t.Fatal("incoming closed")
		}
		return c
	case <-ctx.Done():
		t.Fatal("no incoming call")
	}
	return nil
}

func TestInviteOffer(t *testing.T) {
	alice, bob := callPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	out, err := alice.Invite(ctx, "sip:bob@imsgate.test")
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	in := nextIncoming(t, bob)
	inv := in.Request()
	body := string(inv.Body())
	for _, want := range []string{
		"PCMU/8000", "PCMA/8000", "opus/48000/2", "telephone-event/8000",
		"a=setup:actpass", "a=group:BUNDLE", "a=rtcp-mux", "a=fingerprint:", "typ host",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("offer lacks %q", want)
		}
	}
	if strings.Contains(body, "end-of-candidates") == false && !strings.Contains(body, "a=candidate:") {
		t.Errorf("offer has no candidates: not gathered before sending")
	}
	via := inv.Via()
	if via.Transport != "WSS" || !strings.HasSuffix(via.Host, ".invalid") {
		t.Errorf("via = %s, want WSS to an .invalid host", via.Value())
	}
	if b, _ := via.Params.Get("branch"); !strings.HasPrefix(b, "z9hG4bK") {
		t.Errorf("branch %q lacks the RFC 3261 magic cookie", b)
	}
	contact := inv.Contact()
	if !strings.HasSuffix(contact.Address.Host, ".invalid") || !contact.Params.Has("+sip.ice") ||
		contact.Address.UriParams.GetOr("transport", "") != "ws" {
		t.Errorf("contact = %s, want an .invalid ws Contact with +sip.ice", contact.Value())
	}
	if mf := inv.MaxForwards(); mf == nil || mf.Val() != 70 {
		t.Errorf("max-forwards = %v, want 70", mf)
	}
	if err := in.Reject(ctx, sip.StatusBusyHere); err != nil {
		t.Fatalf("reject: %v", err)
	}
	if _, err := out.Result(ctx); err != nil {
		t.Fatalf("result: %v", err)
	}
}

func TestCall(t *testing.T) {
	tests := []struct {
		name string
		// run drives the call from bob's Incoming to its end and returns
		// the end reasons expected at alice (caller) and bob (callee).
		run func(t *testing.T, ctx context.Context, out, in *Call) (aliceReason, bobReason string)
	}{
		{
			name: "answer, media both ways, caller hangs up",
			run: func(t *testing.T, ctx context.Context, out, in *Call) (string, string) {
				answerAndCheckMedia(t, ctx, out, in)
				if err := out.HangUp(ctx); err != nil {
					t.Fatalf("hang up: %v", err)
				}
				return "hangup", "bye"
			},
		},
		{
			name: "answer, media both ways, callee hangs up",
			run: func(t *testing.T, ctx context.Context, out, in *Call) (string, string) {
				answerAndCheckMedia(t, ctx, out, in)
				if err := in.HangUp(ctx); err != nil {
					t.Fatalf("hang up: %v", err)
				}
				return "bye", "hangup"
			},
		},
		{
			name: "caller cancels while ringing",
			run: func(t *testing.T, ctx context.Context, out, in *Call) (string, string) {
				if err := in.Ring(ctx); err != nil {
					t.Fatalf("ring: %v", err)
				}
				expectProvisional(t, ctx, out, sip.StatusRinging)
				if err := out.Cancel(ctx); err != nil {
					t.Fatalf("cancel: %v", err)
				}
				res, err := out.Result(ctx)
				if err != nil {
					t.Fatalf("result: %v", err)
				}
				if res.StatusCode != sip.StatusRequestTerminated {
					t.Errorf("final = %d, want 487", res.StatusCode)
				}
				return "cancelled", "cancel"
			},
		},
		{
			name: "callee rejects",
			run: func(t *testing.T, ctx context.Context, out, in *Call) (string, string) {
				if err := in.Reject(ctx, sip.StatusBusyHere); err != nil {
					t.Fatalf("reject: %v", err)
				}
				res, err := out.Result(ctx)
				if err != nil {
					t.Fatalf("result: %v", err)
				}
				if res.StatusCode != sip.StatusBusyHere {
					t.Errorf("final = %d, want 486", res.StatusCode)
				}
				return "rejected 486", "rejected 486"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alice, bob := callPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			out, err := alice.Invite(ctx, "sip:bob@imsgate.test")
			if err != nil {
				t.Fatalf("invite: %v", err)
			}
			in := nextIncoming(t, bob)
			expectProvisional(t, ctx, out, sip.StatusTrying)
			aliceReason, bobReason := tc.run(t, ctx, out, in)
			waitClosed(t, "alice's call to end", out.Ended())
			waitClosed(t, "bob's call to end", in.Ended())
			if got := out.EndReason(); got != aliceReason {
				t.Errorf("alice end reason = %q, want %q", got, aliceReason)
			}
			if got := in.EndReason(); got != bobReason {
				t.Errorf("bob end reason = %q, want %q", got, bobReason)
			}
		})
	}
}

func expectProvisional(t *testing.T, ctx context.Context, c *Call, code int) {
	t.Helper()
	select {
	case res := <-c.Provisional():
		if res.StatusCode != code {
			t.Fatalf("provisional = %d, want %d", res.StatusCode, code)
		}
	case <-ctx.Done():
		t.Fatalf("no %d", code)
	}
}

func answerAndCheckMedia(t *testing.T, ctx context.Context, out, in *Call) {
	t.Helper()
	answered := make(chan error, 1)
	go func() { answered <- in.Answer(ctx) }()
	res, err := out.Result(ctx)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	if res.StatusCode != sip.StatusOK {
		t.Fatalf("final = %d, want 200", res.StatusCode)
	}
	if err := <-answered; err != nil {
		t.Fatalf("answer: %v", err)
	}
	waitClosed(t, "caller ICE", out.ICEConnected())
	waitClosed(t, "callee ICE", in.ICEConnected())
	// Sent is counted after the write returns, so a packet can be received
	// before its sender has counted it: wait for both counters.
	waitFor(t, "media both ways", func() bool {
		o, i := out.Media(), in.Media()
		return o.Received > 0 && i.Received > 0 && o.Sent > 0 && i.Sent > 0
	})
	for name, c := range map[string]*Call{"caller": out, "callee": in} {
		s := c.Media()
		if s.Sent == 0 || s.FirstReceived.IsZero() {
			t.Errorf("%s media = %+v, want sent and received", name, s)
		}
		if s.Echoed != 0 {
			t.Errorf("%s echoed = %d, want 0: far-end media is not our echo", name, s.Echoed)
		}
	}
	tm := out.Timing()
	if tm.InviteSent.IsZero() || tm.Answered.Before(tm.InviteSent) || tm.ICEConnected.IsZero() || tm.DTLSConnected.IsZero() {
		t.Errorf("caller timing = %+v, want INVITE sent, then answered, ICE and DTLS connected", tm)
	}
	if !tm.FirstEcho.IsZero() {
		t.Errorf("caller first echo = %v, want none: far-end media is not our echo", tm.FirstEcho)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	alice, bob := callPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	out, err := alice.Invite(ctx, "sip:bob@imsgate.test")
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	in := nextIncoming(t, bob)
	answerAndCheckMedia(t, ctx, out, in)
	if err := alice.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitClosed(t, "alice's call to end", out.Ended())
	if got := out.EndReason(); got != "closed" {
		t.Errorf("end reason = %q, want closed", got)
	}
	if _, err := alice.Invite(ctx, "sip:bob@imsgate.test"); err == nil {
		t.Error("invite after close succeeded")
	}
}
