package presence

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestPublish: a browser's PUBLISH reaches the core as a request of ours
// with what the compositor needs; its entity tag and expiry come back, for
// the first publication, a refresh and a removal alike.
func TestPublish(t *testing.T) {
	const pidf = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@ims.test"/>`
	for _, tc := range []struct {
		name    string
		lines   []string
		body    string
		answer  func(*sip.Request) *sip.Response
		want    int
		wantHdr map[string]string // on the answer to the browser
		sent    map[string]string // on the PUBLISH to the core
	}{
		{name: "first publication", lines: []string{"Event: presence", "Expires: 3600", "Content-Type: application/pidf+xml",
			`Authorization: Digest username="alice"`}, body: pidf,
			answer:  publishOK("e1", "1800"),
			want:    200,
			wantHdr: map[string]string{"SIP-ETag": "e1", "Expires": "1800"},
			sent:    map[string]string{"Event": "presence", "Expires": "3600", "Content-Type": "application/pidf+xml", "Authorization": `Digest username="alice"`}},
		{name: "refresh", lines: []string{"Event: presence", "Expires: 3600", "SIP-If-Match: e1"},
			answer:  publishOK("e2", "3600"),
			want:    200,
			wantHdr: map[string]string{"SIP-ETag": "e2", "Expires": "3600"},
			sent:    map[string]string{"SIP-If-Match": "e1", "Expires": "3600"}},
		{name: "removal", lines: []string{"Event: presence", "Expires: 0", "SIP-If-Match: e2"},
			answer:  publishOK("e2", "0"),
			want:    200,
			wantHdr: map[string]string{"Expires": "0"},
			sent:    map[string]string{"SIP-If-Match": "e2", "Expires": "0"}},
		{name: "stale entity tag", lines: []string{"Event: presence", "SIP-If-Match: old"},
			answer: func(req *sip.Request) *sip.Response {
				return sip.NewResponseFromRequest(req, 412, "Conditional Request Failed", nil)
			},
			want: 412, sent: map[string]string{"SIP-If-Match": "old"}},
		{name: "too brief", lines: []string{"Event: presence", "Expires: 5", "Content-Type: application/pidf+xml"}, body: pidf,
			answer: func(req *sip.Request) *sip.Response {
				res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
				res.AppendHeader(sip.NewHeader("Min-Expires", "60"))
				return res
			},
			want: 423, wantHdr: map[string]string{"Min-Expires": "60"}},
		{name: "event not carried", lines: []string{"Event: conference"}, want: 489, wantHdr: map[string]string{"Allow-Events": AllowEvents}},
		{name: "bad expires", lines: []string{"Event: presence", "Expires: 1h"}, want: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			if tc.answer != nil {
				g.core.setAnswer(func(s sent) (*sip.Response, error) { return tc.answer(s.req), nil })
			}
			req := parse(t, "PUBLISH sip:alice@ims.test SIP/2.0", append([]string{"From: <sip:alice@ims.test>;tag=p1",
				"To: <sip:alice@ims.test>", "Call-ID: pub-1", "CSeq: 1 PUBLISH"}, tc.lines...), tc.body)
			res := g.do(true, req)
			if res.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
			}
			for k, v := range tc.wantHdr {
				if h := res.GetHeader(k); h == nil || h.Value() != v {
					t.Errorf("answer %s = %v, want %q", k, h, v)
				}
			}
			if tc.answer == nil {
				g.quiet(false, 0)
				return
			}
			out := g.next(false).req
			if out.Method != sip.PUBLISH || out.CallID().Value() == "pub-1" || tagOf(out.From().Params) == "p1" ||
				string(out.Body()) != tc.body || out.Recipient.String() != "sip:alice@ims.test" {
				t.Fatalf("core got\n%s", out)
			}
			for k, v := range tc.sent {
				if h := out.GetHeader(k); h == nil || h.Value() != v {
					t.Errorf("PUBLISH %s = %v, want %q", k, h, v)
				}
			}
		})
	}
}

func publishOK(etag, expires string) func(*sip.Request) *sip.Response {
	return func(req *sip.Request) *sip.Response {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("SIP-ETag", etag))
		res.AppendHeader(sip.NewHeader("Expires", expires))
		return res
	}
}

// TestUnsolicitedNotify: the core's message-summary NOTIFY outside a
// dialog reaches the one device its Contact user names, or every device of
// the AoR; the first 2xx answers.
func TestUnsolicitedNotify(t *testing.T) {
	const mwi = "Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n"
	for _, tc := range []struct {
		name   string
		uri    string
		event  string
		status map[string]int // per flow
		want   int
		sends  int
	}{
		{name: "every device of the AoR", uri: "sip:alice@ims.test", event: "message-summary", want: 200, sends: 2},
		{name: "one device by its contact", uri: "sip:dev2@gw.test", event: "message-summary", want: 200, sends: 1},
		{name: "one refuses, the other takes it", uri: "sip:alice@ims.test", event: "message-summary",
			status: map[string]int{"f1": 489}, want: 200, sends: 2},
		{name: "not message-summary", uri: "sip:alice@ims.test", event: "presence", want: 489},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			g.web.devices = append(g.web.devices, Device{Flow: "f2", Contact: sip.Uri{Scheme: "sip", User: "dev2", Host: "b2.invalid"}})
			g.web.setAnswer(func(s sent) (*sip.Response, error) {
				if code := tc.status[s.flow]; code != 0 {
					return sip.NewResponseFromRequest(s.req, code, "X", nil), nil
				}
				return okAnswer(s.req), nil
			})
			req := parse(t, "NOTIFY "+tc.uri+" SIP/2.0", []string{"From: <sip:vm@ims.test>;tag=v1", "To: <sip:alice@ims.test>",
				"Call-ID: mwi-1", "CSeq: 4 NOTIFY", "Event: " + tc.event, "Subscription-State: active",
				"Content-Type: application/simple-message-summary"}, mwi)
			if res := g.do(false, req); res.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.want)
			}
			for range tc.sends {
				got := g.next(true).req
				if got.Method != sip.NOTIFY || string(got.Body()) != mwi || got.GetHeader("Event").Value() != "message-summary" ||
					got.CallID().Value() == "mwi-1" || got.GetHeader("Content-Type") == nil {
					t.Fatalf("browser got\n%s", got)
				}
			}
			g.quiet(true, 20*time.Millisecond)
		})
	}
}
