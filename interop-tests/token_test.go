//go:build interop

package interop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Token mode (auth.mode token): the browser presents a JWT at the
// WebSocket upgrade (?access_token=, as a browser cannot set headers) and
// the gateway answers Kamailio's 401/407 with the SIP credentials it holds
// for the token's subject (auth.credentials_file). The tokens are signed
// here, as the web site's backend would.

const (
	tokenSecret      = "interop-hs256-secret-0123456789abcdef" // >= 32 bytes (RFC 7518 3.2)
	tokenAudience    = "imsgate-interop"
	tokenIssuer      = "interop-backend"
	tokenExpiryGrace = 3 * time.Second
	// wrongSIPPassword is what the pages get as their SIP password: in
	// token mode they never need one.
	wrongSIPPassword = "not-the-password"
)

// tokenCredentials maps the tests' token subjects to Kamailio's users;
// carol is the click-to-call pool, registered by the gateway at start.
const tokenCredentials = `subjects:
  user-alice: {aor: "sip:alice@imsgate.test", username: alice, password: secret, realm: imsgate.test}
  user-bob: {aor: "sip:bob@imsgate.test", username: bob, password: secret, realm: imsgate.test}
click_to_call:
  - {aor: "sip:carol@imsgate.test", username: carol, password: secret}
`

// tokenClaims is the token as the gateway reads it: the registered claims
// and the ones that restrict a session.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope       string   `json:"scope,omitempty"`
	Dest        []string `json:"dest,omitempty"`
	ClickToCall []string `json:"click_to_call,omitempty"`
}

// newClaims is a token for subject, issued now, for life (negative: one
// that has expired).
// expiryLateness is how late after a token's exp (or its grace) the
// gateway's close may be seen.
const expiryLateness = 4 * time.Second

func newClaims(subject string, life time.Duration) tokenClaims {
	now := time.Now()
	iat := now
	if life < 0 {
		iat = now.Add(2 * life)
	}
	return tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   subject,
		Audience:  jwt.ClaimStrings{tokenAudience},
		Issuer:    tokenIssuer,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(now.Add(life)),
	}}
}

// signToken signs c with HS256 and secret.
func signToken(t *testing.T, secret string, c tokenClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

// tokenURL is the gateway's WebSocket URL carrying token; empty: none.
func tokenURL(token string) string {
	u := "ws://" + gatewayWSAddr + "/"
	if token != "" {
		u += "?access_token=" + url.QueryEscape(token)
	}
	return u
}

// tokenConfig is the auth section of token mode, its credentials file
// written into the test's artifacts.
func tokenConfig(t *testing.T) string {
	t.Helper()
	creds := filepath.Join(artifactDir(t), "credentials.yaml")
	if err := os.WriteFile(creds, []byte(tokenCredentials), 0o600); err != nil {
		t.Fatalf("write credentials file: %v", err)
	}
	return fmt.Sprintf(`auth:
  mode: token
  secret: %q
  audience: %s
  issuer: %s
  leeway: 0s
  credentials_file: %s
  expiry_grace: %s
`, tokenSecret, tokenAudience, tokenIssuer, creds, tokenExpiryGrace)
}

func TestTokenMode(t *testing.T) {
	// JsSIP with a token for user-alice and a wrong SIP password registers
	// and calls the echo: the browser sees no challenge, Kamailio's log
	// shows it challenged the REGISTER and the INVITE and then accepted
	// alice's credentials, which only the gateway had; audio flows.
	t.Run("registers_and_calls_without_password", func(t *testing.T) {
		e := newEnvWith(t, "udp", tokenConfig(t))
		opts := e.browserOptions("jssip", "jssip.html", "call-out", "alice", "sip:echo@imsgate.test")
		opts.WSURL = tokenURL(signToken(t, tokenSecret, newClaims("user-alice", 5*time.Minute)))
		opts.Password = wrongSIPPassword
		r := startBrowser(t, opts).waitResult(t, browserBudget)
		e.requireOK(t, r, "registered", "confirmed", "ended")
		for _, challenge := range []string{"< SIP/2.0 401", "< SIP/2.0 407"} {
			if r.sawSIP(challenge) {
				e.failf(t, r, "the browser saw a challenge (%s) in token mode", challenge)
			}
		}
		if !r.sawSIP("< SIP/2.0 200 OK (REGISTER)") || !r.sawSIP("< SIP/2.0 200 OK (INVITE)") || !r.sawSIP("> BYE") {
			e.failf(t, r, "want 200 for REGISTER and INVITE, and a BYE, on the WebSocket")
		}
		e.requireChallengeAnswered(t, r, "REGISTER", "alice")
		e.requireChallengeAnswered(t, r, "INVITE", "alice")
		e.requireBrowserAudio(t, r)
		e.requireSIPpRTP(t, r, echoMediaPort)
	})

	// A token for alice registers alice only: the Go browser on alice's
	// token asking to register bob gets 403, and the gateway relays nothing
	// for it; the same token registers alice.
	t.Run("registers_only_its_aor", func(t *testing.T) {
		e := newEnvWith(t, "udp", tokenConfig(t))
		tok := signToken(t, tokenSecret, newClaims("user-alice", 5*time.Minute))
		ctx, cancel := context.WithTimeout(context.Background(), callStep)
		defer cancel()
		other := dialWebUAWith(t, "webua-bob", webua.Config{URL: tokenURL(tok), AoR: "sip:bob@imsgate.test", Password: wrongSIPPassword})
		res, err := other.Register(ctx, 600*time.Second)
		if err != nil {
			failGateway(t, e.gateway, "register bob on alice's token: %v", err)
		}
		t.Logf("REGISTER sip:bob@imsgate.test on alice's token: %d %s", res.StatusCode, res.Reason)
		if res.StatusCode != http.StatusForbidden {
			failGateway(t, e.gateway, "REGISTER of bob on alice's token answered %d %s, want 403", res.StatusCode, res.Reason)
		}
		if regexp.MustCompile(`authorized REGISTER from \S+ user bob`).MatchString(e.kamailio.log()) {
			failGateway(t, e.gateway, "bob's registration reached Kamailio with bob's credentials")
		}
		own := dialWebUAWith(t, "webua-alice", webua.Config{URL: tokenURL(tok), AoR: "sip:alice@imsgate.test", Password: wrongSIPPassword})
		registerWebUA(t, e.gateway, own)
	})

	// Tokens the gateway must not take are refused at the upgrade, before
	// any SIP: 401 with a Bearer challenge (RFC 6750 3) saying why; a
	// subject with no SIP identity and no click-to-call claim is 403. JsSIP
	// on an expired token never connects.
	t.Run("bad_tokens_refused_at_upgrade", func(t *testing.T) {
		e := newEnvWith(t, "udp", tokenConfig(t))
		wrongAudience := newClaims("user-alice", 5*time.Minute)
		wrongAudience.Audience = jwt.ClaimStrings{"another-service"}
		expired := signToken(t, tokenSecret, newClaims("user-alice", -time.Minute))
		cases := []struct {
			name, token string
			status      int
			description string // in error_description
		}{
			{"expired", expired, http.StatusUnauthorized, "expired"},
			{"forged", signToken(t, "another-secret-of-32-bytes-or-more-xyz", newClaims("user-alice", 5*time.Minute)), http.StatusUnauthorized, "signature"},
			{"wrong_audience", signToken(t, tokenSecret, wrongAudience), http.StatusUnauthorized, "audience"},
			{"missing", "", http.StatusUnauthorized, "no token"},
			{"unknown_subject", signToken(t, tokenSecret, newClaims("user-nobody", 5*time.Minute)), http.StatusForbidden, ""},
		}
		for _, tc := range cases {
			status, challenge, body := dialRefused(t, e.gateway, tokenURL(tc.token))
			t.Logf("%s: HTTP %d, WWW-Authenticate %q, body %q", tc.name, status, challenge, body)
			if status != tc.status {
				failGateway(t, e.gateway, "%s token: upgrade answered %d, want %d", tc.name, status, tc.status)
			}
			if tc.status != http.StatusUnauthorized {
				continue
			}
			if !strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, `error="invalid_token"`) {
				failGateway(t, e.gateway, "%s token: WWW-Authenticate %q, want Bearer error=\"invalid_token\"", tc.name, challenge)
			}
			if !strings.Contains(challenge, "error_description=") || !strings.Contains(challenge, tc.description) {
				failGateway(t, e.gateway, "%s token: WWW-Authenticate %q does not say %q in error_description", tc.name, challenge, tc.description)
			}
		}

		opts := e.browserOptions("jssip", "jssip.html", "connect-refused", "alice", "")
		opts.WSURL, opts.Password, opts.NoRegister = tokenURL(expired), wrongSIPPassword, true
		r := startBrowser(t, opts).waitResult(t, browserBudget)
		e.requireOK(t, r, "disconnected")
		t.Logf("JsSIP on an expired token: disconnected %q, no SIP sent; Chromium said %q", r.details("disconnected"), r.WSErrors)
		if r.hasEvent("connected") || len(r.SIP) > 0 {
			e.failf(t, r, "JsSIP connected (or sent SIP) on an expired token")
		}
		// Chromium words a 401 whose challenge it cannot answer (Bearer) so.
		if said := strings.Join(r.WSErrors, " "); !strings.Contains(said, "401") && !strings.Contains(said, "HTTP Authentication failed") {
			e.failf(t, r, "Chromium did not report the upgrade's 401: %q", r.WSErrors)
		}
		// The Go dial's refusal and the browser's.
		if n := strings.Count(e.gateway.log(), `"status": 401, "error": "token expired"`); n < 2 {
			e.failf(t, r, "the gateway logged %d refusals of an expired token, want the Go dial's and the browser's", n)
		}
		if regexp.MustCompile(`authorized REGISTER from \S+ user alice`).MatchString(e.kamailio.log()) {
			e.failf(t, r, "alice registered at Kamailio although every token was refused")
		}
	})

	// At the token's exp the gateway closes the WebSocket with 1008 "token
	// expired": at once for an idle registered page (alice), and for a page
	// in a call (bob) after auth.expiry_grace, with a BYE first on both legs.
	t.Run("expiry_closes_the_session", func(t *testing.T) {
		e := newEnvWith(t, "udp", tokenConfig(t))
		idleClaims, callClaims := newClaims("user-alice", 8*time.Second), newClaims("user-bob", 12*time.Second)
		idleExp, callExp := idleClaims.ExpiresAt.Time, callClaims.ExpiresAt.Time

		idle := e.browserOptions("jssip", "jssip.html", "registered-until-closed", "alice", "")
		idle.Name, idle.WSURL, idle.Password = "browser-idle", tokenURL(signToken(t, tokenSecret, idleClaims)), wrongSIPPassword
		inCall := e.browserOptions("jssip", "jssip.html", "call-until-closed", "bob", "sip:echo@imsgate.test")
		inCall.Name, inCall.WSURL, inCall.Password = "browser-call", tokenURL(signToken(t, tokenSecret, callClaims)), wrongSIPPassword
		bi, bc := startBrowser(t, idle), startBrowser(t, inCall)
		ri, rc := bi.waitResult(t, browserBudget), bc.waitResult(t, browserBudget)

		e.requireOK(t, ri, "registered", "disconnected")
		requireBefore(t, e, ri, "registered", idleExp)
		closed := requireExpiryClose(t, e, ri)
		t.Logf("idle page: token exp %s, WebSocket closed %s later", idleExp.Format(time.TimeOnly), closed.Sub(idleExp).Round(time.Millisecond))
		// The bound allows for the race-built gateway sharing 2 cores with two
		// Chromiums, Kamailio, SIPp and tshark: its timer has been seen
		// to run 2 s late there.
		if d := closed.Sub(idleExp); d < -300*time.Millisecond || d > expiryLateness {
			e.failf(t, ri, "the idle page's WebSocket closed %s after its token's exp, want about 0", d)
		}

		e.requireOK(t, rc, "registered", "confirmed", "ended", "disconnected")
		requireBefore(t, e, rc, "confirmed", callExp)
		ended, _ := rc.firstEvent("ended")
		byeAt := time.UnixMilli(ended.At)
		closed = requireExpiryClose(t, e, rc)
		t.Logf("page in a call: token exp %s, BYE %s later, WebSocket closed %s later (expiry_grace %s)",
			callExp.Format(time.TimeOnly), byeAt.Sub(callExp).Round(time.Millisecond), closed.Sub(callExp).Round(time.Millisecond), tokenExpiryGrace)
		if !rc.sawSIP("< BYE") {
			e.failf(t, rc, "the call ended without a BYE from the gateway")
		}
		if d := byeAt.Sub(callExp); d < tokenExpiryGrace-300*time.Millisecond || d > tokenExpiryGrace+expiryLateness {
			e.failf(t, rc, "the call ended %s after its token's exp, want about expiry_grace (%s)", d, tokenExpiryGrace)
		}
		if closed.Before(byeAt) {
			e.failf(t, rc, "the WebSocket closed (%s) before the call's BYE (%s)", closed.Format(time.StampMilli), byeAt.Format(time.StampMilli))
		}
		e.requireBrowserAudio(t, rc)
		if !strings.Contains(e.kamailio.log(), "request BYE sip:echo@") {
			e.failf(t, rc, "no BYE reached Kamailio for the echo call")
		}
	})

	// A click-to-call token (no SIP identity of its own) calls the one
	// number it names under the pool identity carol, with audio, and
	// nothing else: another destination is 403 at the gateway. The page
	// never registers.
	t.Run("click_to_call_only_its_number", func(t *testing.T) {
		e := newEnvWith(t, "udp", tokenConfig(t))
		claims := newClaims("visitor-42", 5*time.Minute)
		claims.ClickToCall = []string{"echo"}
		opts := e.browserOptions("jssip", "jssip.html", "call-then-refused", "visitor", "sip:echo@imsgate.test")
		opts.WSURL, opts.Password, opts.NoRegister = tokenURL(signToken(t, tokenSecret, claims)), wrongSIPPassword, true
		opts.RefusedTarget = "sip:bob@imsgate.test"
		r := startBrowser(t, opts).waitResult(t, browserBudget)
		e.requireOK(t, r, "connected", "confirmed", "ended", "failed")
		if r.sawSIP("> REGISTER") {
			e.failf(t, r, "the click-to-call page sent a REGISTER")
		}
		i200, i403 := indexSIP(r.SIP, "< SIP/2.0 200 OK (INVITE)"), indexSIP(r.SIP, "< SIP/2.0 403")
		if i200 < 0 || i403 < i200 {
			e.failf(t, r, "want the echo call answered 200, then 403 for %s", opts.RefusedTarget)
		}
		if got := r.details("failed"); len(got) == 0 || got[0] != "Rejected" {
			e.failf(t, r, "JsSIP's call to %s failed with %q, want Rejected (403)", opts.RefusedTarget, got)
		}
		kam := e.kamailio.log()
		if !regexp.MustCompile(`authorized INVITE from \S+ user carol`).MatchString(kam) {
			e.failf(t, r, "Kamailio did not take the call under the pool identity carol")
		}
		if strings.Contains(kam, "request INVITE sip:bob@") {
			e.failf(t, r, "the INVITE to bob reached Kamailio; the gateway should have refused it")
		}
		e.requireBrowserAudio(t, r)
		e.requireSIPpRTP(t, r, echoMediaPort)
	})
}

// dialRefused dials the gateway's WebSocket as a browser would (the sip
// subprotocol) and returns the refused upgrade's status, WWW-Authenticate
// and body; an upgrade that succeeds fails the test.
func dialRefused(t *testing.T, gw *proc, wsURL string) (status int, challenge, body string) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(wsURL, nil)
	if err == nil {
		conn.Close()
		failGateway(t, gw, "upgrade of %s accepted", redactToken(wsURL))
	}
	if resp == nil {
		failGateway(t, gw, "no HTTP answer to the upgrade: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(b))
}

func redactToken(u string) string {
	if i := strings.Index(u, "access_token="); i >= 0 {
		return u[:i] + "access_token=…"
	}
	return u
}

// kamailioAuthLine is Kamailio's log line for accepted credentials (its
// log prefix is {msg-type cseq method call-id}); the source port varies,
// as a request too big for UDP goes over TCP (RFC 3261 18.1.1).
var kamailioAuthLine = regexp.MustCompile(`\{\d+ \d+ (\S+) (\S+)\} <script>: authorized (\S+) from 127\.0\.0\.1:\d+ user (\S+)`)

// requireChallengeAnswered: Kamailio challenged method from the gateway
// and later, in the same Call-ID, accepted user's credentials for it,
// which the browser never had.
func (e *env) requireChallengeAnswered(t *testing.T, r browserResult, method, user string) {
	t.Helper()
	lines := strings.Split(e.kamailio.log(), "\n")
	for i, l := range lines {
		m := kamailioAuthLine.FindStringSubmatch(l)
		if m == nil || m[3] != method || m[4] != user {
			continue
		}
		challenge := fmt.Sprintf("%s %s} <script>: challenge %s from 127.0.0.1:", m[1], m[2], method)
		for _, before := range lines[:i] {
			if strings.Contains(before, challenge) {
				t.Logf("Kamailio: %s\n  then: %s", strings.TrimSpace(before), strings.TrimSpace(l))
				return
			}
		}
	}
	e.failf(t, r, "Kamailio's log has no %s from the gateway challenged and then authorized as %s in the same Call-ID", method, user)
}

// requireBefore: the page's first event name came before deadline (the
// page was quick enough for what the test means to see).
func requireBefore(t *testing.T, e *env, r browserResult, name string, deadline time.Time) {
	t.Helper()
	ev, _ := r.firstEvent(name)
	if at := time.UnixMilli(ev.At); !at.Before(deadline) {
		e.failf(t, r, "the page reached %q at %s, after its token's exp %s: the browser was too slow to test expiry",
			name, at.Format(time.StampMilli), deadline.Format(time.StampMilli))
	}
}

// requireExpiryClose: the page's first disconnection was the gateway's
// close 1008 "token expired"; it returns when it came.
func requireExpiryClose(t *testing.T, e *env, r browserResult) time.Time {
	t.Helper()
	ev, _ := r.firstEvent("disconnected")
	got := ""
	if ev.Detail != nil {
		got = *ev.Detail
	}
	if got != "1008 token expired" {
		e.failf(t, r, "the WebSocket closed with %q, want 1008 \"token expired\"", got)
	}
	return time.UnixMilli(ev.At)
}
