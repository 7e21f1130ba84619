package presence

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// side is where one leg of a subscription lives: a browser's flow or the
// core. The subscription code is the same in both directions; only this
// differs.
type side interface {
	// send sends a request on this side and returns its final response.
	send(ctx context.Context, req *sip.Request) (*sip.Response, error)
	// contact is our Contact on this side; its user names the subscription.
	contact(user string) sip.Uri
	// key names a dialog of ours on this side by what the peer's in-dialog
	// requests carry: its Call-ID and our tag (their To tag).
	key(callID, localTag string) string
	// flow is the browser's flow, "" for the core.
	flow() string
	String() string
}

// webSide is a browser's WebSocket flow.
type webSide struct {
	flows Flows
	id    string
}

func (w webSide) send(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return w.flows.Request(ctx, w.id, req)
}

// contact is like the gateway's web contacts: the flow carries every
// request, the .invalid host says so (RFC 7118 5).
func (w webSide) contact(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: "imsgate.invalid", UriParams: sip.HeaderParams{{K: "transport", V: "ws"}}}
}

func (w webSide) key(callID, localTag string) string {
	return "w|" + w.id + "|" + callID + "|" + localTag
}
func (w webSide) flow() string   { return w.id }
func (w webSide) String() string { return "web" }

// coreSide is the core, through the gateway's SIP transport.
type coreSide struct{ core Core }

func (c coreSide) send(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return c.core.Request(ctx, req)
}

func (c coreSide) contact(user string) sip.Uri        { return c.core.Contact(user) }
func (c coreSide) key(callID, localTag string) string { return "c|" + callID + "|" + localTag }
func (c coreSide) flow() string                       { return "" }
func (c coreSide) String() string                     { return "core" }
