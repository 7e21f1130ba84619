package presence

import (
	"github.com/emiago/sipgo/sip"
)

// dialog is one leg's dialog (RFC 3261 12): the identifiers, both
// sequence numbers, and where our requests in it go. A subscription keeps
// one per leg; a relayed MESSAGE or PUBLISH uses one for its single request.
type dialog struct {
	callID     string
	localTag   string
	remoteTag  string // "" until the peer answered (or, RFC 6665 4.1.2.4, notified)
	localName  string
	local      sip.Uri
	remoteName string
	remote     sip.Uri
	target     sip.Uri   // the peer's Contact
	routes     []sip.Uri // the route set
	cseq       uint32    // ours, last used
	remoteCSeq uint32    // the peer's, last seen (0: none yet)
}

// calling is the dialog we start for req toward target: the same parties,
// a Call-ID and tag of our own (RFC 3261 12.1.2).
func calling(req *sip.Request, target sip.Uri, newTag func(int) string) dialog {
	from, to := req.From(), req.To()
	return dialog{callID: newTag(24), localTag: newTag(12),
		localName: from.DisplayName, local: *from.Address.Clone(),
		remoteName: to.DisplayName, remote: *to.Address.Clone(),
		target: *target.Clone()}
}

// answering is the dialog req starts with us as its UAS (RFC 3261 12.1.1):
// the peer's Contact and Record-Route as they are, our tag.
func answering(req *sip.Request, localTag string) dialog {
	from, to := req.From(), req.To()
	d := dialog{callID: callID(req), localTag: localTag, remoteTag: tagOf(from.Params),
		localName: to.DisplayName, local: *to.Address.Clone(),
		remoteName: from.DisplayName, remote: *from.Address.Clone(),
		routes: recordRoute(req, false), remoteCSeq: req.CSeq().SeqNo}
	if ct := req.Contact(); ct != nil {
		d.target = *ct.Address.Clone()
	}
	return d
}

// request builds our next request in the dialog (RFC 3261 12.2.1.1); the
// caller holds the lock that guards d.
func (d *dialog) request(method sip.RequestMethod) *sip.Request {
	d.cseq++
	req := sip.NewRequest(method, *d.target.Clone())
	from := &sip.FromHeader{DisplayName: d.localName, Address: *d.local.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", d.localTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{DisplayName: d.remoteName, Address: *d.remote.Clone(), Params: sip.NewParams()}
	if d.remoteTag != "" {
		to.Params.Add("tag", d.remoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, u := range d.routes {
		req.AppendHeader(&sip.RouteHeader{Address: *u.Clone()})
	}
	return req
}

// accept takes a request from the peer into the dialog: its tag when the
// dialog has none yet (a NOTIFY before the 2xx, RFC 6665 4.1.2.4, with its
// Record-Route as the route set), its Contact as the new remote target
// (SUBSCRIBE and NOTIFY refresh it, RFC 6665 4.1.2.4/4.2.2), its CSeq.
// False when it does not belong (another tag: another fork, RFC 6665
// 4.1.2.4; an older CSeq: out of order, RFC 3261 12.2.2).
func (d *dialog) accept(req *sip.Request) bool {
	tag := tagOf(req.From().Params)
	if d.remoteTag != "" && tag != d.remoteTag {
		return false
	}
	seq := req.CSeq().SeqNo
	if d.remoteCSeq != 0 && seq < d.remoteCSeq {
		return false
	}
	if d.remoteTag == "" {
		d.remoteTag = tag
		d.routes = recordRoute(req, false)
	}
	d.remoteCSeq = seq
	if ct := req.Contact(); ct != nil && !ct.Address.Wildcard {
		d.target = *ct.Address.Clone()
	}
	return true
}

// answered takes the peer's 2xx to our request: its tag, route set
// (reversed Record-Route, RFC 3261 12.1.2) and Contact when the dialog
// has none yet; the Contact alone after that (a target refresh).
func (d *dialog) answered(res *sip.Response) {
	if d.remoteTag == "" {
		d.remoteTag = tagOf(res.To().Params)
		d.routes = recordRoute(res, true)
	}
	if ct := res.Contact(); ct != nil && !ct.Address.Wildcard {
		d.target = *ct.Address.Clone()
	}
}

// recordRoute is a message's Record-Route as URIs, reversed for a UAC.
func recordRoute(m sip.Message, reverse bool) []sip.Uri {
	var out []sip.Uri
	for _, h := range m.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			out = append(out, *rr.Address.Clone())
		}
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

func tagOf(p sip.HeaderParams) string {
	v, _ := p.Get("tag")
	return v
}

// contactHeader is a Contact of ours.
func contactHeader(u sip.Uri) *sip.ContactHeader {
	return &sip.ContactHeader{Address: u, Params: sip.NewParams()}
}
