package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func claims(sub string, exp time.Time) Claims {
	return Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, Audience: jwt.ClaimStrings{"imsgate"},
		Issuer: "backend", IssuedAt: jwt.NewNumericDate(t0.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(exp)}}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c Claims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writePEM(t testing.TB, dir string, keys ...any) string {
	t.Helper()
	var out []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	p := filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeJWKS(t testing.TB, dir string, kid string, k *rsa.PublicKey) string {
	t.Helper()
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	set := map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}}}
	raw, _ := json.Marshal(set)
	p := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerify: each kind of key checks its own tokens, and every kind of
// bad token is refused with the reason a browser's developer needs.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwksKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cfg := Config{Secret: "s3cret-shared-with-the-backend", KeyFile: writePEM(t, dir, &rsaKey.PublicKey, &ecKey.PublicKey),
		JWKSFile: writeJWKS(t, dir, "k1", &jwksKey.PublicKey), Audience: "imsgate", Issuer: "backend", Leeway: 5 * time.Second}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	good := claims("alice", t0.Add(time.Hour))
	wrongAud := good
	wrongAud.Audience = jwt.ClaimStrings{"someone-else"}
	wrongIss := good
	wrongIss.Issuer = "mallory"
	noSub := good
	noSub.Subject = ""
	noExp := good
	noExp.ExpiresAt = nil
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), good, ""), nil},
		{"RS256 from the PEM file", sign(t, jwt.SigningMethodRS256, rsaKey, good, ""), nil},
		{"ES256 from the PEM file", sign(t, jwt.SigningMethodES256, ecKey, good, ""), nil},
		{"RS256 from the JWKS by kid", sign(t, jwt.SigningMethodRS256, jwksKey, good, "k1"), nil},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), claims("alice", t0.Add(-time.Minute)), ""), ErrExpired},
		{"expired within the leeway", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), claims("alice", t0.Add(-2*time.Second)), ""), nil},
		{"no expiry", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), noExp, ""), ErrMalformed},
		{"forged: another RSA key", sign(t, jwt.SigningMethodRS256, other, good, ""), ErrSignature},
		{"forged: wrong secret", sign(t, jwt.SigningMethodHS256, []byte("guess"), good, ""), ErrSignature},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), wrongAud, ""), ErrAudience},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), wrongIss, ""), ErrIssuer},
		{"no subject", sign(t, jwt.SigningMethodHS256, []byte(cfg.Secret), noSub, ""), ErrMalformed},
		{"alg none", unsigned(t, good), ErrSignature},
		{"HS384 not accepted", sign(t, jwt.SigningMethodHS384, []byte(cfg.Secret), good, ""), ErrSignature},
		{"garbage", "not.a.token", ErrMalformed},
		{"too large", string(make([]byte, maxTokenBytes+1)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token, t0)
			if tt.want == nil {
				if err != nil || c.Subject != "alice" {
					t.Fatalf("got %v, %+v", err, c)
				}
				return
			}
			var te *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &te) || te.Status() != 401 {
				t.Fatalf("got %v, want %v with status 401", err, tt.want)
			}
		})
	}
}

func unsigned(t testing.TB, c Claims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKeyRotation: a key file rewritten by the backend is read again; one
// that no longer parses keeps the keys read before.
func TestKeyRotation(t *testing.T) {
	defer func(d time.Duration) { reloadCheck = d }(reloadCheck)
	reloadCheck = 0
	dir := t.TempDir()
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := writePEM(t, dir, &k1.PublicKey)
	v, err := NewVerifier(Config{KeyFile: path})
	if err != nil {
		t.Fatal(err)
	}
	tok2 := sign(t, jwt.SigningMethodES256, k2, claims("bob", t0.Add(time.Hour)), "")
	if _, err := v.Verify(tok2, t0); !errors.Is(err, ErrSignature) {
		t.Fatalf("before rotation: %v", err)
	}
	writePEM(t, dir, &k2.PublicKey)
	later := time.Now().Add(time.Hour)
	_ = os.Chtimes(path, later, later)
	if _, err := v.Verify(tok2, t0); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if err := os.WriteFile(path, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(path, later.Add(time.Hour), later.Add(time.Hour))
	if err := v.Reload(); err == nil {
		t.Fatal("a broken key file must be reported")
	}
	if _, err := v.Verify(tok2, t0); err != nil {
		t.Fatalf("a broken file dropped the keys: %v", err)
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name, header, url, want string
	}{
		{"bearer header", "Bearer abc.def.ghi", "/", "abc.def.ghi"},
		{"bearer any case", "bearer abc", "/", "abc"},
		{"query", "", "/?access_token=q.r.s", "q.r.s"},
		{"header wins", "Bearer h", "/?access_token=q", "h"},
		{"basic is not a token", "Basic dXNlcjpwYXNz", "/", ""},
		{"none", "", "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.url, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, ok := FromRequest(r)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("got %q %v", got, ok)
			}
		})
	}
}

func TestClaimsRestrict(t *testing.T) {
	tests := []struct {
		name       string
		c          Claims
		user, host string
		calls      bool
		messages   bool
		reach      bool
	}{
		{"no restriction", Claims{}, "bob", "ims.example.com", true, true, true},
		{"calls only", Claims{Scope: "calls"}, "bob", "x", true, false, true},
		{"messages only", Claims{Scope: "messages"}, "bob", "x", false, true, true},
		{"destination pattern on the user", Claims{Dest: []string{"+1555*"}}, "+15551234", "x", true, true, true},
		{"destination pattern refused", Claims{Dest: []string{"+1555*"}}, "+19005551234", "x", true, true, false},
		{"destination pattern on user@host", Claims{Dest: []string{"*@pbx.example.com"}}, "200", "PBX.example.com", true, true, true},
		{"click to call: listed", Claims{ClickToCall: []string{"sip:+18005550100"}, Dest: []string{"*"}}, "+18005550100", "x", true, true, true},
		{"click to call: not listed", Claims{ClickToCall: []string{"+18005550100"}, Dest: []string{"*"}}, "+18005550199", "x", true, true, false},
		{"bad pattern matches nothing", Claims{Dest: []string{"["}}, "[", "x", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.c.Allows(ScopeCalls) != tt.calls || tt.c.Allows(ScopeMessages) != tt.messages || tt.c.MayReach(tt.user, tt.host) != tt.reach {
				t.Fatalf("calls %v messages %v reach %v", tt.c.Allows(ScopeCalls), tt.c.Allows(ScopeMessages), tt.c.MayReach(tt.user, tt.host))
			}
		})
	}
}

// FuzzVerify: any bytes as a token are refused or accepted, never a panic.
func FuzzVerify(f *testing.F) {
	cfg := Config{Secret: "fuzz-secret"}
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(cfg.Secret), claims("alice", t0.Add(time.Hour)), ""))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	v, err := NewVerifier(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(raw, t0)
		if err == nil && c.Subject == "" {
			t.Fatal("accepted a token with no subject")
		}
	})
}
