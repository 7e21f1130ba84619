package presence

import (
	"context"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// PUBLISH (RFC 3903) from a browser goes to the core's event state
// compositor as a request of the gateway's (own Call-ID and tag), like a
// MESSAGE; the entity tag and expiry the compositor grants come back as
// they are, so the browser refreshes (SIP-If-Match without a body),
// modifies and removes (Expires: 0) its publication itself. The relay
// keeps no state for it.

// publishHeaders go with a PUBLISH to the core (Event is written by the relay).
var publishHeaders = []string{"Expires", "SIP-If-Match", "Content-Type", "Authorization", "Proxy-Authorization",
	"P-Preferred-Identity"}

// publish relays a browser's PUBLISH to the core.
func (r *Relay) publish(flow string, req *sip.Request, reply func(*sip.Response)) {
	ev, bad := checkRequest(req)
	if bad != nil {
		reply(bad)
		return
	}
	out := relayed(req, *req.Recipient.Clone(), nil, r.newTag)
	out.AppendHeader(eventHeader(req))
	copyHeaders(req, out, publishHeaders...)
	r.wait(req, reply, func(ctx context.Context) (*sip.Response, error) { return r.core.Request(ctx, out) },
		func(got, res *sip.Response) {
			if got == nil {
				return
			}
			// What the browser needs to refresh, modify or remove it (RFC 3903 6, 11).
			copyHeaders(got, res, "SIP-ETag", "Expires", "Allow-Events")
			etag := ""
			if h := got.GetHeader("SIP-ETag"); h != nil {
				etag = h.Value()
			}
			r.log.Info("publish relayed", zap.String("sip_call_id", callID(req)), zap.String("event", ev.String()),
				zap.String("flow", flow), zap.Int("status", got.StatusCode), zap.String("etag", etag))
		})
}
