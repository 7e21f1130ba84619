package b2bua

import (
	"github.com/emiago/sipgo/sip"
)

// dialog is one leg's dialog state as seen from the gateway (RFC 3261 12).
type dialog struct {
	callID       string
	local        sip.Uri
	localName    string
	localTag     string
	remote       sip.Uri
	remoteName   string
	remoteTag    string
	remoteTarget sip.Uri
	routes       []sip.Uri
	cseq         uint32 // local CSeq of the last request we sent
	remoteCSeq   uint32 // CSeq of the last request the leg sent us
	haveRemote   bool
}

// acceptCSeq takes the CSeq of a request the leg sent; false when it is
// lower than the last one (RFC 3261 12.2.2). ACK and CANCEL reuse their
// INVITE's number and are not checked.
func (d *dialog) acceptCSeq(req *sip.Request) bool {
	seq, _ := cseqOf(req)
	if req.IsAck() || req.IsCancel() {
		return true
	}
	if d.haveRemote && seq < d.remoteCSeq {
		return false
	}
	d.remoteCSeq, d.haveRemote = seq, true
	return true
}

// request builds an in-dialog request (RFC 3261 12.2.1.1). ACK takes the
// CSeq number of the INVITE it acknowledges (seq), others the next one.
func (d *dialog) request(method sip.RequestMethod, seq uint32) *sip.Request {
	req := sip.NewRequest(method, *d.remoteTarget.Clone())
	for _, r := range d.routes {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
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
	if method != sip.ACK && method != sip.CANCEL {
		d.cseq++
		seq = d.cseq
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	return req
}

// cancelOf builds the CANCEL of an INVITE we sent (RFC 3261 9.1): same
// Request-URI, top Via, Call-ID, From, To and CSeq number.
func cancelOf(inv *sip.Request) *sip.Request {
	return sameTransaction(inv, sip.CANCEL, inv.To())
}

// ackOfFailure builds the ACK of a non-2xx final response to an INVITE we
// sent (RFC 3261 17.1.1.3): like CANCEL, with the response's To (its tag).
func ackOfFailure(inv *sip.Request, res *sip.Response) *sip.Request {
	return sameTransaction(inv, sip.ACK, res.To())
}

// sameTransaction builds a request that belongs to the INVITE's transaction.
func sameTransaction(inv *sip.Request, method sip.RequestMethod, to *sip.ToHeader) *sip.Request {
	req := sip.NewRequest(method, *inv.Recipient.Clone())
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(h))
	}
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(to))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	seq, _ := cseqOf(inv)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	return req
}

// remoteTargetOf is the Contact URI of a message, or fallback.
func remoteTargetOf(msg sipMsg, fallback sip.Uri) sip.Uri {
	if c := msg.Contact(); c != nil {
		return *c.Address.Clone()
	}
	return fallback
}
