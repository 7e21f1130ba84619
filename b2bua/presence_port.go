package b2bua

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/presence"
)

// What the presence relay needs of the gateway: requests toward a
// browser's flow (presenceFlows) or the core (presenceCore), and the
// registered browsers (presenceFlows too).
type (
	presenceFlows struct{ g *Gateway }
	presenceCore  struct{ g *Gateway }
)

// Request sends req over a browser's flow and waits for its final
// response, matched like a call's (Via branch and method).
func (p presenceFlows) Request(ctx context.Context, flow string, req *sip.Request) (*sip.Response, error) {
	f, ok := p.g.lookupFlow(flow)
	if !ok {
		return nil, statusErr(480, "Temporarily Unavailable", errFlowGone)
	}
	req.PrependHeader(webVia(f))
	key := branchOf(req) + string(req.Method)
	final := make(chan *sip.Response, 1)
	p.g.webTxs.add(key, webTxEntry{flow: flow, deliver: func(res *sip.Response) {
		if res.StatusCode >= 200 {
			select {
			case final <- res:
			default:
			}
		}
	}})
	defer p.g.webTxs.remove(key)
	if err := f.WriteMessage(req); err != nil {
		return nil, statusErr(480, "Temporarily Unavailable", errFlowGone)
	}
	select {
	case res := <-final:
		return res, nil
	case <-ctx.Done():
		return nil, statusErr(408, "Request Timeout", fmt.Errorf("%s to browser: %w", req.Method, errTimeout))
	}
}

// Request sends req toward the core: out of a dialog to the outbound
// proxy, in a dialog (a To tag: a subscription's refresh or NOTIFY) along
// its route set to its remote target.
func (p presenceCore) Request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if to := req.To(); to != nil && tagOf(to.Params) != "" {
		return p.g.core.requestInDialog(ctx, req)
	}
	// The relay's requests out of a dialog come from a browser, whose From
	// the gateway checked (identity.go): it vouches for it, routes it by its
	// registration's Service-Route, and in token mode answers the core's
	// challenges as that identity.
	from := req.From().Address
	p.g.assertIdentity(req, from)
	p.g.preloadServiceRoute(req, "", from)
	seq := req.CSeq().SeqNo
	return p.g.core.requestAs(ctx, req, p.g.tokens.byAoR(from), func() uint32 { seq++; return seq })
}

// Contact is the gateway's Contact toward the core. The core's requests in
// a subscription dialog come back by Call-ID and tag, whatever the user
// part; the relay puts the subscription's id there.
func (p presenceCore) Contact(user string) sip.Uri { return p.g.core.contact(user).Address }

func (p presenceFlows) Device(user string) (presence.Device, bool) {
	b, ok := p.g.reg.lookup(user)
	if !ok {
		return presence.Device{}, false
	}
	return presence.Device{Flow: p.g.reg.flowOf(b), Contact: *b.contact.Address.Clone()}, true
}

func (p presenceFlows) Devices(aor sip.Uri) []presence.Device { return p.g.reg.devicesOf(aor) }
