package democore

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// nonceLifetime is how long a nonce may be replayed (RFC 7616 §3.3 leaves it
// to the server; the gateway replays the browser's last credentials to
// unregister, as Kamailio allows while the nonce is fresh).
const nonceLifetime = 5 * time.Minute

// newNonce returns a stateless nonce: issue time plus an HMAC over it.
func (c *Core) newNonce(now time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.Unix()))
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(c.nonceMAC(ts[:]))
}

func (c *Core) nonceMAC(ts []byte) []byte {
	m := hmac.New(sha256.New, c.nonceKey)
	m.Write(ts)
	return m.Sum(nil)[:16]
}

// nonceValid reports whether nonce was issued by this core within nonceLifetime.
func (c *Core) nonceValid(nonce string, now time.Time) bool {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 8+16 {
		return false
	}
	if !hmac.Equal(raw[8:], c.nonceMAC(raw[:8])) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	age := now.Sub(issued)
	return age >= -time.Second && age <= nonceLifetime
}

// challenge builds the 401 for req (RFC 3261 §22.4, MD5, qop=auth).
func (c *Core) challenge(req *sip.Request, stale bool) *sip.Response {
	chal := digest.Challenge{
		Realm:     c.opts.Realm,
		Nonce:     c.newNonce(time.Now()),
		Algorithm: "MD5",
		QOP:       []string{"auth"},
		Stale:     stale,
	}
	res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
	return res
}

// authResult says what to do with a request after checking Authorization.
type authResult int

const (
	authUnknown authResult = iota
	authOK
	authChallenge      // no or unusable credentials: 401
	authChallengeStale // right password, old nonce: 401 stale=true
	authForbidden      // credentials for another user: 403
)

func (r authResult) String() string {
	switch r {
	case authOK:
		return "ok"
	case authChallenge:
		return "challenge"
	case authChallengeStale:
		return "stale"
	case authForbidden:
		return "forbidden"
	default:
		return "unknown"
	}
}

// authenticate verifies req's Authorization for the AoR user.
func (c *Core) authenticate(req *sip.Request, aorUser string) authResult {
	h := req.GetHeader("Authorization")
	if h == nil {
		return authChallenge
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return authChallenge
	}
	if cred.Realm != c.opts.Realm {
		return authChallenge
	}
	password, ok := c.opts.Users[cred.Username]
	if !ok {
		return authChallenge
	}
	if alg := strings.ToUpper(cred.Algorithm); alg != "" && alg != "MD5" {
		return authChallenge
	}
	chal := &digest.Challenge{Realm: c.opts.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method:   req.Method.String(),
		URI:      cred.URI,
		Username: cred.Username,
		Password: password,
		Cnonce:   cred.Cnonce,
		Count:    cred.Nc,
	})
	if err != nil {
		return authChallenge
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) != 1 {
		return authChallenge
	}
	if !c.nonceValid(cred.Nonce, time.Now()) {
		return authChallengeStale
	}
	if cred.Username != aorUser {
		return authForbidden
	}
	return authOK
}

func (c *Core) authRequired() bool { return len(c.opts.Users) > 0 }
