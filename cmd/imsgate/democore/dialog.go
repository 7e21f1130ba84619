package democore

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// dialog is the state RFC 3261 §12 asks for to send in-dialog requests.
type dialog struct {
	callID       string
	localURI     sip.Uri
	localTag     string
	remoteURI    sip.Uri
	remoteTag    string
	remoteTarget sip.Uri
	routeSet     []sip.Uri // in the order Route headers are written

	mu       sync.Mutex
	localSeq uint32
}

// dialogAsUAS builds the dialog from a received INVITE and our To tag
// (RFC 3261 §12.1.1: route set is Record-Route in order).
func dialogAsUAS(req *sip.Request, localTag string) (*dialog, error) {
	from, to, callID := req.From(), req.To(), req.CallID()
	if from == nil || to == nil || callID == nil {
		return nil, fmt.Errorf("dialog from invite: %w: missing From/To/Call-ID", ErrBadRequest)
	}
	remoteTag, _ := from.Params.Get("tag")
	if remoteTag == "" {
		return nil, fmt.Errorf("dialog from invite: %w: From without tag", ErrBadRequest)
	}
	contacts, err := parseContacts(req)
	if err != nil || len(contacts) != 1 || contacts[0].wildcard {
		return nil, fmt.Errorf("dialog from invite: %w: need one Contact", ErrBadRequest)
	}
	routes, err := parseRoutes(req, "record-route")
	if err != nil {
		return nil, fmt.Errorf("dialog from invite: %w: %w", ErrBadRequest, err)
	}
	return &dialog{
		callID:       callID.Value(),
		localURI:     *to.Address.Clone(),
		localTag:     localTag,
		remoteURI:    *from.Address.Clone(),
		remoteTag:    remoteTag,
		remoteTarget: contacts[0].uri,
		routeSet:     routes,
		localSeq:     randUint32() & 0x7FFFFFFF,
	}, nil
}

// dialogAsUAC builds the dialog from our INVITE and its 2xx (RFC 3261
// §12.1.2: route set is Record-Route reversed).
func dialogAsUAC(inv *sip.Request, res *sip.Response) (*dialog, error) {
	from, to := inv.From(), res.To()
	if from == nil || to == nil {
		return nil, fmt.Errorf("dialog from 2xx: %w: missing From/To", ErrBadRequest)
	}
	localTag, _ := from.Params.Get("tag")
	remoteTag, _ := to.Params.Get("tag")
	if remoteTag == "" {
		return nil, fmt.Errorf("dialog from 2xx: %w: To without tag", ErrBadRequest)
	}
	contacts, err := parseContacts(res)
	if err != nil || len(contacts) != 1 || contacts[0].wildcard {
		return nil, fmt.Errorf("dialog from 2xx: %w: need one Contact", ErrBadRequest)
	}
	routes, err := parseRoutes(res, "record-route")
	if err != nil {
		return nil, fmt.Errorf("dialog from 2xx: %w: %w", ErrBadRequest, err)
	}
	for i, j := 0, len(routes)-1; i < j; i, j = i+1, j-1 {
		routes[i], routes[j] = routes[j], routes[i]
	}
	return &dialog{
		callID:       callIDOf(inv),
		localURI:     *from.Address.Clone(),
		localTag:     localTag,
		remoteURI:    *to.Address.Clone(),
		remoteTag:    remoteTag,
		remoteTarget: contacts[0].uri,
		routeSet:     routes,
		localSeq:     inv.CSeq().SeqNo,
	}, nil
}

// matches reports whether an in-dialog request belongs to this dialog: the
// peer's From tag is our remote tag and its To tag our local tag.
func (d *dialog) matches(req *sip.Request) bool {
	from, to := req.From(), req.To()
	if from == nil || to == nil || callIDOf(req) != d.callID {
		return false
	}
	ft, _ := from.Params.Get("tag")
	tt, _ := to.Params.Get("tag")
	return ft == d.remoteTag && tt == d.localTag
}

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1), loose routing.
func (d *dialog) newRequest(method sip.RequestMethod, contact sip.Uri) *sip.Request {
	d.mu.Lock()
	d.localSeq++
	seq := d.localSeq
	d.mu.Unlock()

	req := sip.NewRequest(method, *d.remoteTarget.Clone())
	for _, r := range d.routeSet {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(&sip.FromHeader{Address: *d.localURI.Clone(), Params: sip.HeaderParams{{K: "tag", V: d.localTag}}})
	req.AppendHeader(&sip.ToHeader{Address: *d.remoteURI.Clone(), Params: sip.HeaderParams{{K: "tag", V: d.remoteTag}}})
	callID := sip.CallIDHeader(d.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.SetBody(nil)
	return req
}

// bye sends BYE in the dialog and waits for its final response.
func (c *Core) bye(ctx context.Context, d *dialog) error {
	req := d.newRequest(sip.BYE, c.contactURI(transportOfTarget(d)))
	res, err := c.doRequest(ctx, req)
	if err != nil {
		return fmt.Errorf("bye %s: %w", d.callID, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("bye %s: %w", d.callID, &StatusError{Status: res.StatusCode, Reason: res.Reason})
	}
	return nil
}

// transportOfTarget is the transport a request to the dialog's next hop uses.
func transportOfTarget(d *dialog) string {
	u := d.remoteTarget
	if len(d.routeSet) > 0 {
		u = d.routeSet[0]
	}
	return uriTransport(u)
}

func uriTransport(u sip.Uri) string {
	if v, ok := u.UriParams.Get("transport"); ok && (v == "tcp" || v == "TCP") {
		return "TCP"
	}
	return "UDP"
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
