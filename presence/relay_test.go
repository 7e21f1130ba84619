package presence

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

func TestLocalAnswers(t *testing.T) {
	r := New(nil, nil, nil, DefaultLimits, zap.NewNop())
	defer r.Close()
	for _, tc := range []struct {
		name          string
		method        sip.RequestMethod
		web, core     int
		event         string
		noHeaders     bool
		wantAllow     bool
		wantAllowEvts bool
	}{
		{name: "options answered here", method: sip.OPTIONS, web: 200, core: 200, wantAllow: true, wantAllowEvts: true},
		{name: "info outside a dialog", method: sip.INFO, web: 501, core: 501},
		{name: "notify outside a subscription", method: sip.NOTIFY, event: "presence", web: 481, core: 489},
		{name: "publish of an event not carried; from the core", method: sip.PUBLISH, event: "foo", web: 489, core: 405, wantAllow: true},
		{name: "without the headers every request has", method: sip.MESSAGE, web: 400, core: 400, noHeaders: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(tc.method, sip.Uri{Scheme: "sip", User: "bob", Host: "imsgate.test"})
			req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "imsgate.test"}, Params: sip.NewParams()})
			if !tc.noHeaders {
				from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "imsgate.test"}, Params: sip.NewParams()}
				from.Params.Add("tag", "a1")
				req.AppendHeader(from)
				cid := sip.CallIDHeader("l1")
				req.AppendHeader(&cid)
				req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: tc.method})
				if tc.event != "" {
					req.AppendHeader(sip.NewHeader("Event", tc.event))
				}
			}
			for _, side := range []struct {
				name string
				want int
				from func(func(*sip.Response))
			}{
				{"web", tc.web, func(reply func(*sip.Response)) { r.FromWeb("flow1", req, reply) }},
				{"core", tc.core, func(reply func(*sip.Response)) { r.FromCore(req, reply) }},
			} {
				var got *sip.Response
				side.from(func(res *sip.Response) { got = res })
				if got == nil || got.StatusCode != side.want {
					t.Fatalf("%s: got %v, want %d", side.name, got, side.want)
				}
				if !got.To().Params.Has("tag") {
					t.Fatal("a final response outside a dialog carries our To tag")
				}
				if tc.wantAllow && side.want != 489 && got.GetHeader("Allow") == nil {
					t.Fatalf("%s: %d says what is allowed", side.name, side.want)
				}
				if tc.wantAllowEvts && !strings.Contains(got.GetHeader("Allow-Events").Value(), "message-summary") {
					t.Fatalf("%s: OPTIONS 200 says which events", side.name)
				}
			}
		})
	}
	if !strings.Contains(Allow, "SUBSCRIBE") || !strings.Contains(Allow, "PUBLISH") {
		t.Fatalf("Allow %q lacks SUBSCRIBE or PUBLISH", Allow)
	}
}
