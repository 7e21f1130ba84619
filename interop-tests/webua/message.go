package webua

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"

	"github.com/emiago/sipgo/sip"
)

const allowMethods = "INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY"

// newRequest builds a request with the headers every request carries
// (RFC 3261 §8.1.1): a fresh Via branch, Max-Forwards, From, To, Call-ID,
// CSeq, and a User-Agent. The caller adds the rest and sets the body.
func (u *UA) newRequest(method sip.RequestMethod, recipient sip.Uri, from sip.FromHeader, to sip.ToHeader, callID string, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, recipient)
	req.AppendHeader(u.newVia())
	maxForwards := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxForwards)
	req.AppendHeader(&to)
	req.AppendHeader(&from)
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	return req
}

// newVia is what JsSIP sends: WSS transport and an .invalid host (RFC 7118 §5.2).
func (u *UA) newVia() *sip.ViaHeader {
	return &sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       "WSS",
		Host:            u.viaHost,
		Params:          params("branch", sip.GenerateBranch()),
	}
}

// contactHeader is our .invalid Contact with the +sip.ice media feature tag (RFC 5768).
func (u *UA) contactHeader() *sip.ContactHeader {
	return &sip.ContactHeader{Address: *u.contact.Clone(), Params: params("+sip.ice", "")}
}

func callIDOf(msg sip.Message) string {
	if h := msg.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func tagOf(params sip.HeaderParams) string {
	tag, _ := params.Get("tag")
	return tag
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomToken is for tags, Call-IDs and .invalid names; they need to be
// unique, not secret.
func randomToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenAlphabet[mrand.IntN(len(tokenAlphabet))]
	}
	return string(b)
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// params builds header or URI parameters from key, value pairs.
func params(kv ...string) sip.HeaderParams {
	p := sip.NewParams()
	for i := 0; i+1 < len(kv); i += 2 {
		p.Add(kv[i], kv[i+1])
	}
	return p
}
