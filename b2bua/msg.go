package b2bua

import (
	"crypto/rand"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// userAgent is what the gateway calls itself on both legs.
const userAgent = "imsgate"

// token returns a random lowercase token usable as a SIP URI user or tag.
func token(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func newBranch() string { return sip.RFC3261BranchMagicCookie + token(16) }

// sipMsg is a request or a response, with the header accessors both have.
type sipMsg interface {
	sip.Message
	GetHeader(name string) sip.Header
	RemoveHeader(name string) bool
	Contact() *sip.ContactHeader
	ContentType() *sip.ContentTypeHeader
}

// response builds a response to req with the given local tag on To (RFC 3261
// 8.2.6.2: the same tag on every response of a dialog-forming request).
func response(req *sip.Request, code int, reason, toTag string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && code != 100 && toTag != "" {
		to.Params.Remove("tag")
		to.Params.Add("tag", toTag)
	}
	res.AppendHeader(sip.NewHeader("Server", userAgent))
	return res
}

// setSDP puts an SDP body on a message, or clears the body.
func setSDP(msg sipMsg, sdp []byte) {
	msg.RemoveHeader("Content-Type")
	if len(sdp) > 0 {
		msg.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	msg.SetBody(sdp)
}

// sdpBody returns the SDP body of a message, if it has one.
func sdpBody(msg sipMsg) []byte {
	body := msg.Body()
	if len(body) == 0 {
		return nil
	}
	if ct := msg.ContentType(); ct != nil && !strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp") {
		return nil
	}
	return body
}

// copyHeaders copies every header of the given names from one message to another.
func copyHeaders(from, to sip.Message, names ...string) {
	for _, n := range names {
		for _, h := range from.GetHeaders(n) {
			to.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
		}
	}
}

func tagOf(params sip.HeaderParams) string {
	t, _ := params.Get("tag")
	return t
}

func cseqOf(msg sip.Message) (uint32, sip.RequestMethod) {
	if c := msg.CSeq(); c != nil {
		return c.SeqNo, c.MethodName
	}
	return 0, ""
}

func branchOf(msg sip.Message) string {
	if v := msg.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		return b
	}
	return ""
}

func callIDOf(msg sip.Message) string {
	if c := msg.CallID(); c != nil {
		return c.Value()
	}
	return ""
}

// expiresOf returns the expiry a REGISTER or its 200 asks for a contact:
// the contact's expires parameter, else the Expires header, else def.
func expiresOf(msg sipMsg, contact *sip.ContactHeader, def int) int {
	if contact != nil {
		if v, ok := contact.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return n
			}
		}
	}
	if h := msg.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			return n
		}
	}
	return def
}

// contacts returns every Contact of a message, however the values were split
// across header lines.
func contacts(msg sip.Message) []*sip.ContactHeader {
	var out []*sip.ContactHeader
	for _, h := range msg.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			out = append(out, c)
		}
	}
	return out
}

// sameURI compares two SIP URIs on the parts that identify a contact.
func sameURI(a, b sip.Uri) bool {
	return strings.EqualFold(a.Host, b.Host) && a.User == b.User && a.Port == b.Port
}

// routeSet turns the Record-Route of a response (UAC side, RFC 3261 12.1.2:
// reversed) or of a request (UAS side, 12.1.1: as is) into Route headers.
func routeSet(msg sip.Message, reverse bool) []sip.Uri {
	var uris []sip.Uri
	for _, h := range msg.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			uris = append(uris, rr.Address)
		}
	}
	if reverse {
		for i, j := 0, len(uris)-1; i < j; i, j = i+1, j-1 {
			uris[i], uris[j] = uris[j], uris[i]
		}
	}
	return uris
}
