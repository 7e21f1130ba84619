package presence

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

func TestLocalAnswers(t *testing.T) {
	r := New(nil, nil, nil, DefaultLimits, zap.NewNop())
	for _, tc := range []struct {
		name   string
		method sip.RequestMethod
		code   int
	}{
		{"options answered here", sip.OPTIONS, 200},
		{"subscribe not relayed yet", sip.SUBSCRIBE, 501},
		{"publish not relayed yet", sip.PUBLISH, 501},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(tc.method, sip.Uri{Scheme: "sip", User: "bob", Host: "imsgate.test"})
			req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "imsgate.test"}, Params: sip.NewParams()})
			for _, from := range []func(func(*sip.Response)){
				func(reply func(*sip.Response)) { r.FromWeb("flow1", req, reply) },
				func(reply func(*sip.Response)) { r.FromCore(req, reply) },
			} {
				var got *sip.Response
				from(func(res *sip.Response) { got = res })
				if got == nil || got.StatusCode != tc.code {
					t.Fatalf("got %v, want %d", got, tc.code)
				}
				if !got.To().Params.Has("tag") {
					t.Fatal("a final response outside a dialog carries our To tag")
				}
				if tc.code == 200 && got.GetHeader("Allow") == nil {
					t.Fatal("OPTIONS 200 says what is allowed")
				}
			}
		})
	}
}
