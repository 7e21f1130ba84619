package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
)

// TestPrepareInDialog: an in-dialog request goes to its first Route when
// that is a loose router, to a strict router with the Request-URI rewritten
// (RFC 3261 12.2.1.1), or to the remote target with no route set, over the
// transport the URI names; a request too large for UDP goes over TCP.
func TestPrepareInDialog(t *testing.T) {
	ups, err := newUpstreams(configs.Upstream{Proxy: "sip:proxy.test:5060"})
	if err != nil {
		t.Fatal(err)
	}
	core := &coreSide{transport: "udp", ups: ups}
	for _, tc := range []struct {
		name       string
		target     string
		routes     []string
		bodyBytes  int
		wantDest   string
		wantTP     string
		wantRURI   string
		wantRoutes []string
	}{
		{"no route set: the remote target", "sip:bob@10.0.0.2:5080", nil, 0,
			"10.0.0.2:5080", "UDP", "sip:bob@10.0.0.2:5080", nil},
		{"remote target's transport", "sip:bob@10.0.0.2;transport=tcp", nil, 0,
			"10.0.0.2:5060", "TCP", "sip:bob@10.0.0.2;transport=tcp", nil},
		{"loose router", "sip:bob@10.0.0.2", []string{"sip:p1.test:5070;lr", "sip:p2.test;lr"}, 0,
			"p1.test:5070", "UDP", "sip:bob@10.0.0.2", []string{"sip:p1.test:5070;lr", "sip:p2.test;lr"}},
		{"strict router", "sip:bob@10.0.0.2", []string{"sip:p1.test:5070", "sip:p2.test;lr", "sip:p3.test;lr"}, 0,
			"p1.test:5070", "UDP", "sip:p1.test:5070", []string{"sip:p2.test;lr", "sip:p3.test;lr", "sip:bob@10.0.0.2"}},
		{"loose router over tls names its transport", "sip:bob@10.0.0.2", []string{"sip:p1.test;lr;transport=tcp"}, 0,
			"p1.test:5060", "TCP", "sip:bob@10.0.0.2", []string{"sip:p1.test;lr;transport=tcp"}},
		{"too large for udp", "sip:bob@10.0.0.2:5080", nil, 1400,
			"10.0.0.2:5080", "TCP", "sip:bob@10.0.0.2:5080", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var target sip.Uri
			if err := sip.ParseUri(tc.target, &target); err != nil {
				t.Fatal(err)
			}
			req := sip.NewRequest(sip.INFO, target)
			for _, r := range tc.routes {
				var u sip.Uri
				if err := sip.ParseUri(r, &u); err != nil {
					t.Fatal(err)
				}
				req.AppendHeader(&sip.RouteHeader{Address: u})
			}
			req.SetBody([]byte(strings.Repeat("x", tc.bodyBytes)))
			core.prepareInDialog(req)
			if got := req.Destination(); got != tc.wantDest {
				t.Errorf("destination %s, want %s", got, tc.wantDest)
			}
			if got := req.Transport(); got != tc.wantTP {
				t.Errorf("transport %s, want %s", got, tc.wantTP)
			}
			if got := req.Recipient.String(); got != tc.wantRURI {
				t.Errorf("Request-URI %s, want %s", got, tc.wantRURI)
			}
			var routes []string
			for _, h := range req.GetHeaders("Route") {
				routes = append(routes, h.(*sip.RouteHeader).Address.String())
			}
			if strings.Join(routes, ",") != strings.Join(tc.wantRoutes, ",") {
				t.Errorf("routes %v, want %v", routes, tc.wantRoutes)
			}
		})
	}
}
