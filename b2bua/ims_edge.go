package b2bua

import (
	"github.com/emiago/sipgo/sip"
)

// The gateway is the edge of the core's trust domain (RFC 3325; TS 24.229
// 5.2.6 for an IMS core): it asserts the identity it authenticated, and no
// trust-domain header a browser wrote reaches the core, nor one of the
// core's internal headers a browser. Requests are rebuilt from lists of the
// headers that cross (inviteHeaders, failureHeaders, registerHeaders and
// the presence relay's), so a browser's P-Asserted-Identity,
// P-Charging-Vector or P-Visited-Network-ID is never copied;
// upstream.web_headers widens what crosses toward the browser.

// assertIdentity puts the identity the gateway vouches for on a request
// toward the core, with the configured access network.
func (g *Gateway) assertIdentity(req *sip.Request, id sip.Uri) {
	for req.RemoveHeader("P-Asserted-Identity") {
	}
	for req.RemoveHeader("P-Preferred-Identity") {
	}
	plain := sip.Uri{Scheme: id.Scheme, User: id.User, Host: id.Host, Port: id.Port}
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+plain.String()+">"))
	g.accessNetwork(req)
}

// accessNetwork adds the configured P-Access-Network-Info, and on a
// REGISTER the P-Visited-Network-ID.
func (g *Gateway) accessNetwork(req *sip.Request) {
	up := g.cfg.Upstream
	if up.AccessNetworkInfo != "" {
		req.AppendHeader(sip.NewHeader("P-Access-Network-Info", up.AccessNetworkInfo))
	}
	if up.VisitedNetworkID != "" && req.Method == sip.REGISTER {
		req.AppendHeader(sip.NewHeader("P-Visited-Network-ID", up.VisitedNetworkID))
	}
}

// addPath makes the core route requests for a binding through the
// gateway (RFC 3327), as an IMS core expects of its edge.
func (g *Gateway) addPath(req *sip.Request, b *binding) {
	if !g.cfg.Upstream.IMS {
		return
	}
	u := g.core.contact(b.token).Address
	u.UriParams = append(u.UriParams, sip.HeaderParams{{K: "lr", V: ""}}...)
	req.AppendHeader(sip.NewHeader("Path", "<"+u.String()+">"))
	req.AppendHeader(sip.NewHeader("Supported", "path"))
}

// serviceRoute reads the Service-Route of a REGISTER's 2xx (RFC 3608).
func serviceRoute(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Service-Route") {
		out = append(out, splitAddresses(h.Value())...)
	}
	return out
}

// preloadServiceRoute routes an out-of-dialog request of an identity by
// the Service-Route its registration got (upstream.ims): the one on flow,
// or on any flow when flow is empty.
func (g *Gateway) preloadServiceRoute(req *sip.Request, flow string, id sip.Uri) {
	if !g.cfg.Upstream.IMS {
		return
	}
	for _, r := range g.reg.serviceRoute(flow, id) {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
}

// webHeaders are the header names that cross toward the browser:
// the gateway's own list and upstream.web_headers.
func (g *Gateway) webHeaders(base []string) []string {
	if len(g.cfg.Upstream.WebHeaders) == 0 {
		return base
	}
	out := append(base[:len(base):len(base)], g.cfg.Upstream.WebHeaders...)
	return out
}
