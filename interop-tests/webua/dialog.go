package webua

import (
	"github.com/emiago/sipgo/sip"
)

// dialog is the state RFC 3261 §12 keeps for in-dialog requests.
type dialog struct {
	callID       string
	localTag     string
	remoteTag    string
	local        sip.Uri // our URI (From when we call, To when called)
	remote       sip.Uri
	remoteTarget sip.Uri   // Contact of the 2xx or the INVITE
	routeSet     []sip.Uri // from Record-Route, in the order to send Route
	localCSeq    uint32
}

// routeSetFrom reads Record-Route: a UAS keeps the order, a UAC reverses it
// (RFC 3261 §12.1.1, §12.1.2).
func routeSetFrom(msg sip.Message, reverse bool) []sip.Uri {
	hdrs := msg.GetHeaders("Record-Route")
	routes := make([]sip.Uri, 0, len(hdrs))
	for _, h := range hdrs {
		rr, ok := h.(*sip.RecordRouteHeader)
		if !ok {
			continue
		}
		routes = append(routes, *rr.Address.Clone())
	}
	if reverse {
		for i, j := 0, len(routes)-1; i < j; i, j = i+1, j-1 {
			routes[i], routes[j] = routes[j], routes[i]
		}
	}
	return routes
}

// newInDialogRequest builds BYE and the like (RFC 3261 §12.2.1.1) with the
// next local CSeq. Loose routing only: the Request-URI is the remote target.
func (c *Call) newInDialogRequest(method sip.RequestMethod) *sip.Request {
	c.mu.Lock()
	c.dialog.localCSeq++
	d := c.dialog
	c.mu.Unlock()
	return c.ua.dialogRequest(method, d, d.localCSeq)
}

func (u *UA) dialogRequest(method sip.RequestMethod, d dialog, cseq uint32) *sip.Request {
	from := sip.FromHeader{Address: *d.local.Clone(), Params: params("tag", d.localTag)}
	to := sip.ToHeader{Address: *d.remote.Clone(), Params: params("tag", d.remoteTag)}
	req := u.newRequest(method, *d.remoteTarget.Clone(), from, to, d.callID, cseq)
	for _, r := range d.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	req.SetBody(nil)
	return req
}
