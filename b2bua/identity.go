package b2bua

import (
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	authtoken "github.com/imsgate/imsgate/internal/token"
)

// Digest pass-through (auth.mode passthrough, TS 24.371): the core
// authenticates a browser when it accepts the browser's REGISTER. The core
// sees one source for every browser, so the gateway answers for what it
// relays: until a registration the core accepted is in place on a
// WebSocket flow, nothing but REGISTER (and OPTIONS, answered here) is
// relayed from it, and a browser speaks only as an AoR registered on its
// own flow. Requests in a dialog belong to one that passed this check, and
// go on when the registration lapses.

// speaksAs tells the out-of-dialog requests that are relayed under their
// From identity, and so need a registration on the flow.
func speaksAs(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.MESSAGE, sip.SUBSCRIBE, sip.PUBLISH:
		return true
	}
	return false
}

// admitted tells whether a browser's out-of-dialog request may be relayed;
// when not, it has answered it 403.
func (g *Gateway) admitted(f webFlow, in *serverTx, log *zap.Logger) bool {
	why := g.authorize(f.Flow(), in.req)
	if why == refusalNone {
		return true
	}
	g.refuseWeb(f, in, why, log)
	return false
}

// authorize checks a browser's out-of-dialog request: against the
// destination denylist in every mode; in token mode against its token
// session; in passthrough its From and any P-Preferred-Identity (RFC 3325)
// against the AoRs registered on its flow now.
func (g *Gateway) authorize(flow string, req *sip.Request) refusal {
	if g.deniedDestination(req) {
		return refusalDenied
	}
	if g.tokens != nil {
		s := g.tokens.session(flow)
		if s == nil {
			return refusalUnregistered
		}
		return s.authorize(req)
	}
	aors := g.reg.identities(flow, time.Now())
	switch {
	case len(aors) == 0:
		return refusalUnregistered
	case !hasAoR(aors, req.From().Address):
		return refusalFrom
	}
	for _, u := range preferredIdentities(req) {
		if u == nil || !hasAoR(aors, *u) {
			return refusalPreferred
		}
	}
	return refusalNone
}

// preferredIdentities are the URIs of a request's P-Preferred-Identity
// headers; nil stands for one that does not parse.
func preferredIdentities(req *sip.Request) []*sip.Uri {
	var out []*sip.Uri
	for _, h := range req.GetHeaders("P-Preferred-Identity") {
		for _, v := range splitAddresses(h.Value()) {
			var u sip.Uri
			params := sip.NewParams()
			if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
				out = append(out, nil)
				continue
			}
			out = append(out, &u)
		}
	}
	return out
}

// deniedDestination tells a request whose Request-URI matches
// limits.deny_destinations (premium-rate numbers), in any mode.
func (g *Gateway) deniedDestination(req *sip.Request) bool {
	if req.Method != sip.INVITE && req.Method != sip.MESSAGE {
		return false
	}
	return authtoken.MatchesDestination(g.cfg.Limits.DenyDestinations, req.Recipient.User, req.Recipient.Host)
}

// refuseWeb answers a browser's request 403 saying why, logs it (at Info
// once per flow, reason and window) and counts it.
func (g *Gateway) refuseWeb(f webFlow, in *serverTx, why refusal, log *zap.Logger) {
	lvl := zap.DebugLevel
	if g.refused.note(f.Flow(), why, time.Now()) {
		lvl = zap.InfoLevel
	}
	if ce := log.Check(lvl, "request refused"); ce != nil {
		ce.Write(zap.Stringer("reason", why), zap.String("aor", in.req.From().Address.String()))
	}
	res := response(in.req, why.status(), why.phrase(), token(10))
	res.AppendHeader(sip.NewHeader("Warning", `399 imsgate "`+why.phrase()+`"`))
	_ = in.reply(res)
}

func hasAoR(aors []sip.Uri, u sip.Uri) bool {
	for _, a := range aors {
		if sameAoR(a, u) {
			return true
		}
	}
	return false
}

// sameAoR compares two URIs as addresses of record: sip and sips alike,
// the user exactly (RFC 3261 19.1.4), the host in any case; port and
// parameters do not name another user.
func sameAoR(a, b sip.Uri) bool {
	return isSIPScheme(a.Scheme) && isSIPScheme(b.Scheme) && a.User == b.User && strings.EqualFold(a.Host, b.Host)
}

func isSIPScheme(s string) bool { return s == "sip" || s == "sips" }

// splitAddresses splits a header value listing name-addrs or addr-specs
// (RFC 3261 7.3.1) at its commas, but not at those quoted or in brackets.
func splitAddresses(v string) []string {
	var out []string
	quoted, bracket, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++ // a quoted-pair
		case c == '"':
			quoted = !quoted
		case !quoted && c == '<':
			bracket = true
		case !quoted && c == '>':
			bracket = false
		case !quoted && !bracket && c == ',':
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}
