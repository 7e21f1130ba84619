package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Config says which tokens are good: signed with Secret (HS256), or with
// a key of KeyFile (PEM public keys or certificates: RS256, ES256) or
// JWKSFile (a JSON Web Key Set); for Audience and from Issuer when set.
type Config struct {
	Secret   string
	KeyFile  string
	JWKSFile string
	Audience string
	Issuer   string
	// Leeway absorbs clock skew between the backend and the gateway.
	Leeway time.Duration
}

// maxTokenBytes bounds what Verify parses: a token is a few hundred bytes;
// one of kilobytes is an attack on the parser, not a credential.
const maxTokenBytes = 8 << 10

// Verifier checks tokens. Its key files are re-read when they change (a
// backend rotating its keys), at most once per reloadCheck, on the
// goroutine of the Verify that noticed; a file that no longer reads keeps
// the keys it had.
type Verifier struct {
	cfg     Config
	keys    atomic.Pointer[keySet]
	checked throttle   // the last look at the files
	mu      sync.Mutex // one reload at a time
	opts    []jwt.ParserOption
}

// keySet is what one reading of the key files gave.
type keySet struct {
	pem     []crypto.PublicKey
	jwks    keyfunc.Keyfunc
	pemTime time.Time // modification times they were read at
	setTime time.Time
}

// NewVerifier reads the key files once; an unreadable one is an error.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Secret == "" && cfg.KeyFile == "" && cfg.JWKSFile == "" {
		return nil, errors.New("token: no secret, key file or JWKS file")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods(cfg)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v := &Verifier{cfg: cfg, opts: opts}
	ks, err := readKeys(cfg, nil)
	if err != nil {
		return nil, err
	}
	v.keys.Store(ks)
	v.checked.start()
	return v, nil
}

// methods are the algorithms the configured keys can check; no other is
// accepted (no "none", no HS256 signed with a public key).
func methods(cfg Config) []string {
	var m []string
	if cfg.Secret != "" {
		m = append(m, "HS256")
	}
	if cfg.KeyFile != "" || cfg.JWKSFile != "" {
		m = append(m, "RS256", "ES256")
	}
	return m
}

// Verify checks a token and returns its claims. The error says why a
// token is refused (Error.Status and Error.Reason for the HTTP answer).
func (v *Verifier) Verify(raw string, now time.Time) (Claims, error) {
	if len(raw) > maxTokenBytes {
		return Claims{}, refused(ErrMalformed, "token too large")
	}
	if v.checked.due() {
		_ = v.Reload()
	}
	var c Claims
	// A parser per token: its options hold the time it checks against.
	parser := jwt.NewParser(append(v.opts[:len(v.opts):len(v.opts)], jwt.WithTimeFunc(func() time.Time { return now }))...)
	_, err := parser.ParseWithClaims(raw, &c, v.key)
	if err != nil {
		return Claims{}, classify(err)
	}
	if c.Subject == "" {
		return Claims{}, refused(ErrMalformed, "token has no subject")
	}
	return c, nil
}

// key picks the key that checks t: the secret for HS256, a key of the
// JWKS (by kid) or of the PEM file for RS256 and ES256.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	ks := v.keys.Load()
	switch t.Method.Alg() {
	case "HS256":
		return []byte(v.cfg.Secret), nil
	case "RS256", "ES256":
		var keys jwt.VerificationKeySet
		for _, k := range ks.pem {
			if fits(t.Method.Alg(), k) {
				keys.Keys = append(keys.Keys, k)
			}
		}
		if ks.jwks != nil {
			if k, err := ks.jwks.Keyfunc(t); err == nil {
				keys.Keys = append(keys.Keys, k)
			}
		}
		if len(keys.Keys) == 0 {
			return nil, errors.New("no key for this token")
		}
		return keys, nil
	}
	return nil, fmt.Errorf("algorithm %s not accepted", t.Method.Alg())
}

func fits(alg string, k crypto.PublicKey) bool {
	switch k.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return alg == "ES256"
	}
	return false
}

// Reload re-reads key files that changed since they were read; on an
// error the keys stay as they were.
func (v *Verifier) Reload() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	ks, err := readKeys(v.cfg, v.keys.Load())
	if err != nil {
		return err
	}
	v.keys.Store(ks)
	return nil
}

// readKeys reads the key files, keeping from old what did not change.
func readKeys(cfg Config, old *keySet) (*keySet, error) {
	ks := &keySet{}
	if old != nil {
		*ks = *old
	}
	if cfg.KeyFile != "" {
		data, mod, err := readIfChanged("token key file", cfg.KeyFile, ks.pemTime)
		if err != nil {
			return nil, err
		}
		if data != nil {
			keys, err := parsePublicKeys(data)
			if err != nil {
				return nil, fmt.Errorf("token key file %s: %w", cfg.KeyFile, err)
			}
			ks.pem, ks.pemTime = keys, mod
		}
	}
	if cfg.JWKSFile != "" {
		data, mod, err := readIfChanged("token jwks file", cfg.JWKSFile, ks.setTime)
		if err != nil {
			return nil, err
		}
		if data != nil {
			if !json.Valid(data) {
				return nil, fmt.Errorf("token jwks file %s: not JSON", cfg.JWKSFile)
			}
			set, err := keyfunc.NewJWKSetJSON(data)
			if err != nil {
				return nil, fmt.Errorf("token jwks file %s: %w", cfg.JWKSFile, err)
			}
			ks.jwks, ks.setTime = set, mod
		}
	}
	return ks, nil
}

// parsePublicKeys reads every PUBLIC KEY and CERTIFICATE block of a PEM
// file; RSA and ECDSA keys are kept.
func parsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(bytes.TrimSpace(data))
		if b == nil {
			break
		}
		var k any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = cert.PublicKey
			}
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		switch k.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no RSA or ECDSA public key")
	}
	return keys, nil
}

// FromRequest is the token an upgrade request carries: the
// Authorization: Bearer header (RFC 6750 2.1), else the access_token query
// parameter (2.3; browsers cannot set headers on a WebSocket).
func FromRequest(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(tok) != "" {
			return strings.TrimSpace(tok), true
		}
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return tok, true
	}
	return "", false
}
