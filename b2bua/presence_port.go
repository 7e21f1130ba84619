package b2bua

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// presencePort is what the presence relay needs of the gateway: sending
// toward a browser's flow or the core, and the flows of an AoR.
type presencePort struct{ g *Gateway }

func (p presencePort) Send(flow string, msg sip.Message) error {
	f, ok := p.g.lookupFlow(flow)
	if !ok {
		return errFlowGone
	}
	return f.WriteMessage(msg)
}

func (p presencePort) Request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return p.g.core.request(ctx, req)
}

func (p presencePort) FlowsOf(aor sip.Uri) []string { return p.g.reg.flowsOf(aor) }
