package presence

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestSubscribeRefused: what the relay answers itself, and what the
// notifier's refusal does.
func TestSubscribeRefused(t *testing.T) {
	challenge := func(s sent) (*sip.Response, error) {
		if s.req.GetHeader("Authorization") == nil {
			res := sip.NewResponseFromRequest(s.req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="ims.test", nonce="n1"`))
			return res, nil
		}
		return okAnswer(s.req), nil
	}
	for _, tc := range []struct {
		name    string
		fromWeb bool
		uri     string
		lines   []string
		answer  func(sent) (*sip.Response, error)
		want    int
		header  string // the answer carries it
		relayed bool
	}{
		{name: "event not carried", fromWeb: true, lines: []string{"Event: presence.winfo"}, want: 489, header: "Allow-Events"},
		{name: "no event", fromWeb: true, want: 400},
		{name: "bad expires", fromWeb: true, lines: []string{"Event: presence", "Expires: soon"}, want: 400},
		{name: "negative expires", fromWeb: true, lines: []string{"Event: presence", "Expires: -1"}, want: 400},
		{name: "no contact", fromWeb: true, lines: []string{"Event: presence"}, want: 400},
		{name: "challenge passes back", fromWeb: true, lines: []string{"Event: presence"}, answer: challenge, want: 401,
			header: "WWW-Authenticate", relayed: true},
		{name: "no answer from the core", fromWeb: true, lines: []string{"Event: presence"},
			answer: func(sent) (*sip.Response, error) { return nil, errTest }, want: 408, relayed: true},
		{name: "core to a browser nobody registered", uri: "sip:nobody@gw.test", lines: []string{"Event: reg"}, want: 404},
		{name: "core's event not carried", uri: "sip:dev1@gw.test", lines: []string{"Event: conference"}, want: 489, header: "Allow-Events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			if tc.uri == "sip:nobody@gw.test" {
				g.web.devices = nil
			}
			g.core.setAnswer(tc.answer)
			uri := tc.uri
			if uri == "" {
				uri = "sip:bob@ims.test"
			}
			req := subscribeReq(t, uri, "ref-1", tc.lines...)
			if tc.name == "no contact" {
				for req.RemoveHeader("Contact") {
				}
			}
			res := g.do(tc.fromWeb, req)
			if res.StatusCode != tc.want || (tc.header != "" && res.GetHeader(tc.header) == nil) {
				t.Fatalf("got\n%s\nwant %d with %s", res, tc.want, tc.header)
			}
			if tc.relayed {
				g.next(false)
			} else {
				g.quiet(false, 0)
			}
			g.waitCount(0)
		})
	}
}

var errTest = testError("no answer")

type testError string

func (e testError) Error() string { return string(e) }

// TestSubscribeChallengeRetry: after a 401 the browser sends a new
// SUBSCRIBE (no To tag) with credentials; it is a new subscription.
func TestSubscribeChallengeRetry(t *testing.T) {
	g := newRig(t, DefaultLimits)
	g.core.setAnswer(func(s sent) (*sip.Response, error) {
		if s.req.GetHeader("Authorization") == nil {
			return sip.NewResponseFromRequest(s.req, 401, "Unauthorized", nil), nil
		}
		return okAnswer(s.req), nil
	})
	if res := g.do(true, subscribeReq(t, "sip:bob@ims.test", "ch-1", "Event: presence")); res.StatusCode != 401 {
		t.Fatalf("got %d", res.StatusCode)
	}
	g.next(false)
	retry := subscribeReq(t, "sip:bob@ims.test", "ch-1", "Event: presence", `Authorization: Digest username="alice", nonce="n1"`)
	retry.CSeq().SeqNo = 2
	if res := g.do(true, retry); res.StatusCode != 200 {
		t.Fatalf("retry got %d", res.StatusCode)
	}
	if out := g.next(false).req; out.GetHeader("Authorization") == nil {
		t.Fatal("the credentials must reach the core")
	}
	g.waitCount(1)
}

// TestSubscriptionLimit: past MaxSubscriptions a connection gets 429 with
// Retry-After; another connection does not.
func TestSubscriptionLimit(t *testing.T) {
	g := newRig(t, Limits{MaxBodyBytes: 1024, MessageRate: 100, MessageBurst: 100, MaxSubscriptions: 2})
	for i, want := range []int{200, 200, 429} {
		res := g.do(true, subscribeReq(t, "sip:bob@ims.test", "lim-"+string(rune('a'+i)), "Event: presence"))
		if res.StatusCode != want {
			t.Fatalf("SUBSCRIBE %d got %d, want %d", i, res.StatusCode, want)
		}
		if want == 429 && res.GetHeader("Retry-After") == nil {
			t.Fatal("429 must say when to retry")
		}
	}
	// The core's subscriptions toward the browser count too.
	if res := g.do(false, subscribeReq(t, "sip:dev1@gw.test", "lim-core", "Event: dialog")); res.StatusCode != 429 {
		t.Fatalf("the core's SUBSCRIBE to a full flow got %d", res.StatusCode)
	}
	other := make(chan *sip.Response, 1)
	g.r.FromWeb("f2", subscribeReq(t, "sip:bob@ims.test", "lim-f2", "Event: presence"), func(res *sip.Response) { other <- res })
	if res := await(t, other); res.StatusCode != 200 {
		t.Fatalf("another connection got %d", res.StatusCode)
	}
}

// TestSubscribeRateLimit: SUBSCRIBE shares the connection's request rate.
func TestSubscribeRateLimit(t *testing.T) {
	g := newRig(t, Limits{MaxBodyBytes: 1024, MessageRate: 0.001, MessageBurst: 2, MaxSubscriptions: 10})
	codes := map[int]int{}
	for i := range 3 {
		codes[g.do(true, subscribeReq(t, "sip:bob@ims.test", "rate-"+string(rune('a'+i)), "Event: presence")).StatusCode]++
	}
	if codes[200] != 2 || codes[429] != 1 {
		t.Fatalf("codes %v, want 2×200 and 1×429", codes)
	}
}

// TestUnknownDialog: a request in a dialog the relay does not know gets
// 481, from either side.
func TestUnknownDialog(t *testing.T) {
	g := newRig(t, DefaultLimits)
	_, out, res := g.opened(directions[0], "known-1")
	for _, tc := range []struct {
		name    string
		fromWeb bool
		req     *sip.Request
		want    int
	}{
		{"browser refresh, unknown tag", true, inDialogReq(t, "SUBSCRIBE", "sip:x@imsgate.invalid", "<sip:alice@ims.test>;tag=s1",
			"<sip:bob@ims.test>;tag=nope", "known-1", 2, []string{"Event: presence;id=7"}, ""), 481},
		{"core NOTIFY, unknown Call-ID", false, inDialogReq(t, "NOTIFY", "sip:x@gw.test", "<sip:bob@ims.test>;tag=far",
			"<sip:alice@ims.test>;tag=zz", "nope", 1, []string{"Event: presence", "Subscription-State: active"}, ""), 481},
		{"browser NOTIFY in its own subscription", true, inDialogReq(t, "NOTIFY", "sip:x@imsgate.invalid", "<sip:alice@ims.test>;tag=s1",
			res.To().Value(), "known-1", 2, []string{"Event: presence;id=7", "Subscription-State: active"}, ""), 405},
		{"core SUBSCRIBE refresh on our subscription to it", false, inDialogReq(t, "SUBSCRIBE", "sip:x@gw.test", "<sip:bob@ims.test>;tag=far",
			out.req.From().Value(), out.req.CallID().Value(), 1, []string{"Event: presence;id=7"}, ""), 405},
		{"NOTIFY without Subscription-State", false, inDialogReq(t, "NOTIFY", "sip:x@gw.test", "<sip:bob@ims.test>;tag=far",
			out.req.From().Value(), out.req.CallID().Value(), 1, []string{"Event: presence;id=7"}, ""), 400},
		{"refresh out of order", true, inDialogReq(t, "SUBSCRIBE", "sip:x@imsgate.invalid", "<sip:alice@ims.test>;tag=s1",
			res.To().Value(), "known-1", 0, []string{"Event: presence;id=7"}, ""), 500},
		{"options in the dialog", true, inDialogReq(t, "OPTIONS", "sip:x@imsgate.invalid", "<sip:alice@ims.test>;tag=s1",
			res.To().Value(), "known-1", 5, nil, ""), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := g.do(tc.fromWeb, tc.req); got.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", got.StatusCode, tc.want)
			}
		})
	}
	g.quiet(false, 0)
	g.quiet(true, 0)
	if !strings.Contains(AllowEvents, "reg") {
		t.Fatal("Allow-Events lists reg")
	}
}
