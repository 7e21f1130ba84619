package turnserver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API's HMAC is SHA-1 by definition
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/turn/v5"
)

// RESTCredentials makes TURN REST API credentials (coturn's
// use-auth-secret, draft-uberti-behave-turn-rest): the username is
// "expiry:subject" with expiry in unix seconds, the password
// base64(HMAC-SHA1(secret, username)). The gateway hands them to browsers
// in token mode; the server takes them until expiry.
func RESTCredentials(secret, subject string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10)
	if subject != "" {
		username += ":" + subject
	}
	return username, restPassword(secret, username)
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// authenticator finds the long-term key (RFC 8489 §9.2.2) of a username:
// a configured user's, or a REST credential's while it has not expired.
type authenticator struct {
	realm  string
	keys   map[string][]byte // configured user → MD5(user:realm:password)
	secret string            // "" takes no REST credentials
	now    func() time.Time
}

func newAuthenticator(cfg Config, now func() time.Time) *authenticator {
	a := &authenticator{realm: cfg.Realm, keys: make(map[string][]byte, len(cfg.Users)), secret: cfg.Secret, now: now}
	for u, p := range cfg.Users {
		a.keys[u] = turn.GenerateAuthKey(u, cfg.Realm, p)
	}
	return a
}

// credentials returns the key of username and the user quotas count it
// under: the username itself, or a REST credential's subject, so that a
// browser fetching fresh credentials stays under one quota.
func (a *authenticator) credentials(username, realm string) (user string, key []byte, err error) {
	if realm != a.realm {
		// The key hashes the realm the client sent; any other than ours
		// would be a second namespace of users.
		return "", nil, fmt.Errorf("%w %q", errWrongRealm, realm)
	}
	if key, ok := a.keys[username]; ok {
		return username, key, nil
	}
	if a.secret == "" {
		return "", nil, errUnknownUser
	}
	expiry, subject, _ := strings.Cut(username, ":")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		return "", nil, errRESTUsername
	}
	if exp < a.now().Unix() {
		return "", nil, errRESTExpired
	}
	if subject == "" {
		subject = username
	}
	return subject, turn.GenerateAuthKey(username, realm, restPassword(a.secret, username)), nil
}
