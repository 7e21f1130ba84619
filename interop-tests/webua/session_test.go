package webua

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestDirection(t *testing.T) {
	const base = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	tests := []struct {
		name string
		sdp  string
		want Direction
	}{
		{"none means sendrecv", base + "m=audio 9 RTP/AVP 0\r\n", SendRecv},
		{"session level", base + "a=sendonly\r\nm=audio 9 RTP/AVP 0\r\n", SendOnly},
		{"media overrides session", base + "a=sendonly\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n", Inactive},
		{"first audio m-line", base + "m=audio 9 RTP/AVP 0\r\na=recvonly\r\nm=video 9 RTP/AVP 96\r\na=sendonly\r\n", RecvOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DirectionOf(tc.sdp); got != tc.want {
				t.Errorf("DirectionOf = %s, want %s", got, tc.want)
			}
			rewritten := withDirection(tc.sdp, Inactive)
			if got := DirectionOf(rewritten); got != Inactive {
				t.Errorf("after withDirection(inactive): %s\n%s", got, rewritten)
			}
			if n := strings.Count(rewritten, "a=inactive"); n != strings.Count(tc.sdp, "m=") {
				t.Errorf("withDirection wrote %d direction lines for %d m-lines:\n%s", n, strings.Count(tc.sdp, "m="), rewritten)
			}
		})
	}
	for _, tc := range []struct{ want, offered, answer Direction }{
		{SendRecv, SendOnly, RecvOnly},
		{SendRecv, SendRecv, SendRecv},
		{SendOnly, SendRecv, SendOnly},
		{SendOnly, SendOnly, Inactive},
		{SendRecv, Inactive, Inactive},
	} {
		if got := answerDirection(tc.want, tc.offered); got != tc.answer {
			t.Errorf("answerDirection(%s, %s) = %s, want %s", tc.want, tc.offered, got, tc.answer)
		}
	}
}

// TestHoldResume: alice holds bob with a re-INVITE and resumes with an
// UPDATE; bob answers recvonly then sendrecv, and alice's RTP stops and
// starts with it.
func TestHoldResume(t *testing.T) {
	alice, bob := callPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	out, err := alice.Invite(ctx, "sip:bob@imsgate.test")
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	in := nextIncoming(t, bob)
	answerAndCheckMedia(t, ctx, out, in)

	steps := []struct {
		method       sip.RequestMethod
		want, answer Direction
	}{
		{sip.INVITE, SendOnly, RecvOnly},
		{sip.UPDATE, SendRecv, SendRecv},
		{sip.UPDATE, Inactive, Inactive},
		{sip.INVITE, SendRecv, SendRecv},
	}
	for _, st := range steps {
		res, err := out.Reoffer(ctx, st.method, st.want)
		if err != nil {
			t.Fatalf("%s %s: %v", st.method, st.want, err)
		}
		if !res.IsSuccess() || DirectionOf(string(res.Body())) != st.answer {
			t.Fatalf("%s %s: %d with %s, want 200 with %s", st.method, st.want, res.StatusCode, DirectionOf(string(res.Body())), st.answer)
		}
		var got SessionRequest
		select {
		case got = <-in.InDialog():
		case <-ctx.Done():
			t.Fatalf("bob saw no %s", st.method)
		}
		if got.Method != string(st.method) || got.Offer != st.want || got.Answer != st.answer {
			t.Errorf("bob saw %+v, want %s offering %s answered %s", got, st.method, st.want, st.answer)
		}
		if out.Sending() != st.want.sends() || in.Sending() != st.answer.sends() {
			t.Errorf("after %s %s: alice sending %v, bob sending %v", st.method, st.want, out.Sending(), in.Sending())
		}
	}
	// Media flows again after the resume.
	before := in.Media().Received
	waitFor(t, "media after resume", func() bool { return in.Media().Received > before+10 })
	if err := out.HangUp(ctx); err != nil {
		t.Fatalf("hang up: %v", err)
	}
}
