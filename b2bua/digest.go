package b2bua

import (
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	authtoken "github.com/imsgate/imsgate/internal/token"
)

// maxChallenges bounds how often one request is sent again with fresh
// credentials: a second challenge is a stale nonce (RFC 2617 3.2.1), a
// third means the credentials are wrong.
const maxChallenges = 2

// challenged tells a response the gateway may answer with credentials.
func challenged(res *sip.Response) bool {
	return res != nil && (res.StatusCode == 401 || res.StatusCode == 407)
}

// answerChallenge returns req again with credentials answering res's
// challenge (RFC 3261 22.2: Authorization for 401, Proxy-Authorization for
// 407; the Via branch and CSeq renewed by the caller), or false when
// the challenge cannot be answered with id (another realm, an algorithm
// the library lacks).
func answerChallenge(req *sip.Request, res *sip.Response, id *authtoken.Identity) (*sip.Request, bool) {
	ask, answer := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		ask, answer = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(ask)
	if h == nil || id == nil {
		return nil, false
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil || (id.Realm != "" && chal.Realm != id.Realm) {
		return nil, false
	}
	cred, err := digest.Digest(chal, digest.Options{
		Method:   string(req.Method),
		URI:      req.Recipient.String(),
		Username: id.Username,
		Password: id.Password,
		Count:    1,
	})
	if err != nil {
		return nil, false
	}
	out := req.Clone()
	out.RemoveHeader("Authorization")
	out.RemoveHeader("Proxy-Authorization")
	out.AppendHeader(sip.NewHeader(answer, cred.String()))
	return out, true
}
