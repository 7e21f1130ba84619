package b2bua

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/icholy/digest"

	"github.com/imsgate/imsgate/configs"
	authtoken "github.com/imsgate/imsgate/internal/token"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

// tokenRig is a gateway in token mode before a challenging raw core. The
// gateway registers the click-to-call pool (carol) as it starts; the rig
// answers that first.
func tokenRig(t *testing.T) (*Gateway, *rawCore) {
	t.Helper()
	creds := filepath.Join(t.TempDir(), "credentials.yaml")
	err := os.WriteFile(creds, []byte(`subjects:
  user-alice: {aor: "sip:alice@imsgate.test", username: alice, password: secret, realm: imsgate.test}
click_to_call:
  - {aor: "sip:carol@imsgate.test", username: carol, password: secret}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	core := newRawCore(t)
	g := newGatewayTo(t, core, func(c *configs.Config) {
		c.Auth = configs.Auth{Mode: configs.AuthToken, Secret: testSecret, Audience: "web", CredentialsFile: creds,
			ExpiryGrace: 300 * time.Millisecond}
	})
	reg := core.expect(sip.REGISTER)
	if reg.From().Address.User != "carol" {
		t.Fatalf("pool REGISTER from %s", reg.From().Address.String())
	}
	answerWithChallenge(t, core, reg, 401, "carol")
	return g, core
}

// answerWithChallenge challenges req, checks that the gateway answers it
// with the identity's digest (qop=auth) and a higher CSeq, and accepts it.
func answerWithChallenge(t *testing.T, core *rawCore, req *sip.Request, code int, user string) *sip.Request {
	t.Helper()
	ask, answer := "WWW-Authenticate", "Authorization"
	if code == 407 {
		ask, answer = "Proxy-Authenticate", "Proxy-Authorization"
	}
	chal := digest.Challenge{Realm: "imsgate.test", Nonce: "n0nce", Algorithm: "MD5", QOP: []string{"auth"}}
	core.send(reply(req, code, "Challenge", "c1", ask+": "+chal.String()+"\r\n", ""))
	again := expectSkippingACK(t, core, req.Method)
	h := again.GetHeader(answer)
	if h == nil {
		t.Fatalf("%s sent again without %s", req.Method, answer)
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || cred.Username != user {
		t.Fatalf("%s: %v %+v", answer, err, cred)
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: "MD5", QOP: []string{"auth"}},
		digest.Options{Method: string(again.Method), URI: cred.URI, Username: user, Password: "secret", Cnonce: cred.Cnonce, Count: cred.Nc})
	if err != nil || want.Response != cred.Response {
		t.Fatalf("digest response %q, want %q (%v)", cred.Response, want.Response, err)
	}
	if again.CSeq().SeqNo <= req.CSeq().SeqNo {
		t.Fatalf("CSeq %d after %d", again.CSeq().SeqNo, req.CSeq().SeqNo)
	}
	if again.Method == sip.REGISTER {
		core.send(reply(again, 200, "OK", "r1", "Contact: "+again.Contact().Value()+";expires=600\r\n", ""))
	}
	return again
}

// expectSkippingACK is the next request of method; the ACK of a
// challenged INVITE may come before or after it.
func expectSkippingACK(t *testing.T, core *rawCore, method sip.RequestMethod) *sip.Request {
	t.Helper()
	for {
		m, ok := core.next(5 * time.Second)
		if !ok {
			t.Fatalf("core: no %s arrived", method)
		}
		req, isReq := m.msg.(*sip.Request)
		switch {
		case isReq && req.Method == method:
			return req
		case isReq && req.IsAck():
		default:
			t.Fatalf("core: got %s, want %s", startLine(m.msg), method)
		}
	}
}

// aliceMessage is a browser's MESSAGE from alice to bob, "hi".
func aliceMessage(t *testing.T, callID string) *sip.Request {
	t.Helper()
	return parseReq(t, "MESSAGE sip:bob@imsgate.test SIP/2.0\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK"+callID+"\n"+
		"Max-Forwards: 70\nFrom: <sip:alice@imsgate.test>;tag=m1\nTo: <sip:bob@imsgate.test>\nCall-ID: "+callID+"\n"+
		"CSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 2\n\nhi")
}

func signToken(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimsFor(sub string, exp time.Duration, extra jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "aud": "web", "iat": now.Unix(), "exp": now.Add(exp).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// openSession admits a token at a fake upgrade and opens its flow.
func openSession(t *testing.T, g *Gateway, f *fakeFlow, tok string) {
	t.Helper()
	p, err := g.tokens.admit(httptest.NewRequest("GET", "/?access_token="+tok, nil))
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	attach(g, f)
	g.flowOpened(f.Flow(), p)
}

func TestTokenUpgradeRefusals(t *testing.T) {
	g, _ := tokenRig(t)
	for _, tc := range []struct {
		name   string
		target string
		status int
	}{
		{"no token", "/", 401},
		{"expired", "/?access_token=" + signToken(t, testSecret, claimsFor("user-alice", -time.Hour, nil)), 401},
		{"forged", "/?access_token=" + signToken(t, strings.Repeat("x", 40), claimsFor("user-alice", time.Hour, nil)), 401},
		{"wrong audience", "/?access_token=" + signToken(t, testSecret, claimsFor("user-alice", time.Hour, jwt.MapClaims{"aud": "other"})), 401},
		{"no identity", "/?access_token=" + signToken(t, testSecret, claimsFor("user-nobody", time.Hour, nil)), 403},
		{"click to call", "/?access_token=" + signToken(t, testSecret, claimsFor("visitor", time.Hour, jwt.MapClaims{"click_to_call": []string{"echo"}})), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.tokens.admit(httptest.NewRequest("GET", tc.target, nil))
			status := 0
			var st interface{ Status() int }
			if errors.As(err, &st) {
				status = st.Status()
			}
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, err, tc.status)
			}
			var te *authtoken.Error
			if status == http.StatusUnauthorized && (!errors.As(err, &te) || !strings.HasPrefix(te.Challenge(), `Bearer error="invalid_token"`)) {
				t.Fatalf("no Bearer challenge in %v", err)
			}
		})
	}
}

// TestTokenRegisterAndCall: the browser registers and calls knowing no SIP
// password; the gateway answers the core's 401 and 407, asserts the
// token's identity, and no header of the browser's trust-domain reaches
// the core.
func TestTokenRegisterAndCall(t *testing.T) {
	g, core := tokenRig(t)
	f := newFakeFlow("tok1")
	openSession(t, g, f, signToken(t, testSecret, claimsFor("user-alice", time.Hour, nil)))

	web := parseReq(t, strings.Replace(jssipRegister, "Expires: 600\n", "Expires: 600\nAuthorization: Digest username=\"alice\", realm=\"imsgate.test\", nonce=\"old\", uri=\"sip:imsgate.test\", response=\"00\"\n", 1))
	g.handleWeb(f, web)
	reg := core.expect(sip.REGISTER)
	if reg.GetHeader("Authorization") != nil {
		t.Fatal("the browser's Authorization reached the core")
	}
	answerWithChallenge(t, core, reg, 401, "alice")
	if res := f.next(t); res.StatusCode != 200 {
		t.Fatalf("browser got %d, want 200 (never the challenge)", res.StatusCode)
	}

	other := parseReq(t, strings.ReplaceAll(jssipRegister, "sip:alice@", "sip:bob@"))
	g.handleWeb(f, other)
	if res := f.next(t); res.StatusCode != 403 {
		t.Fatalf("REGISTER as bob: %d, want 403", res.StatusCode)
	}

	g.handleWeb(f, webInvite("tok-call", "t1", "P-Asserted-Identity: <sip:boss@imsgate.test>\r\nP-Charging-Vector: icid-value=x\r\nP-Visited-Network-ID: evil\r\n"))
	inv := core.expect(sip.INVITE)
	if pai := inv.GetHeaders("P-Asserted-Identity"); len(pai) != 1 || pai[0].Value() != "<sip:alice@imsgate.test>" {
		t.Fatalf("P-Asserted-Identity %v", pai)
	}
	for _, h := range []string{"P-Charging-Vector", "P-Visited-Network-ID"} {
		if inv.GetHeader(h) != nil {
			t.Fatalf("the browser's %s reached the core", h)
		}
	}
	again := answerWithChallenge(t, core, inv, 407, "alice")
	core.send(reply(again, 486, "Busy Here", "c2", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 486 {
		t.Fatalf("browser got %d, want the core's 486 after the challenge", res.StatusCode)
	}

	g.handleWeb(f, aliceMessage(t, "tok-msg"))
	msg := expectSkippingACK(t, core, sip.MESSAGE) // the ACK of the 486 may come first
	if pai := msg.GetHeader("P-Asserted-Identity"); pai == nil || pai.Value() != "<sip:alice@imsgate.test>" {
		t.Fatalf("MESSAGE P-Asserted-Identity %v", pai)
	}
	again = answerWithChallenge(t, core, msg, 407, "alice")
	core.send(reply(again, 200, "OK", "m2", "", ""))
	if res := f.next(t); res.StatusCode != 200 {
		t.Fatalf("MESSAGE: browser got %d, want 200", res.StatusCode)
	}
}

func TestTokenClickToCall(t *testing.T) {
	g, core := tokenRig(t)
	f := newFakeFlow("c2c")
	openSession(t, g, f, signToken(t, testSecret, claimsFor("visitor-7", time.Hour, jwt.MapClaims{"click_to_call": []string{"echo"}})))

	g.handleWeb(f, webInvite("c2c-bob", "t2", ""))
	if res := f.expectStatus(t); res.StatusCode != 403 {
		t.Fatalf("click-to-call to bob: %d, want 403", res.StatusCode)
	}
	echo := webInvite("c2c-echo", "t3", "")
	echo.Recipient.User = "echo"
	g.handleWeb(f, echo)
	inv := core.expect(sip.INVITE)
	if inv.From().Address.User != "carol" || inv.GetHeader("P-Asserted-Identity").Value() != "<sip:carol@imsgate.test>" {
		t.Fatalf("click-to-call INVITE from %s, PAI %s", inv.From().Address.String(), inv.GetHeader("P-Asserted-Identity").Value())
	}
	core.send(reply(inv, 480, "Temporarily Unavailable", "c3", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 480 {
		t.Fatalf("got %d", res.StatusCode)
	}
	g.handleWeb(f, parseReq(t, jssipRegister))
	if res := f.next(t); res.StatusCode != 403 {
		t.Fatalf("a click-to-call session registered: %d", res.StatusCode)
	}
}

func TestTokenExpiryClosesTheConnection(t *testing.T) {
	g, _ := tokenRig(t)
	f := newFakeFlow("exp1")
	openSession(t, g, f, signToken(t, testSecret, claimsFor("user-alice", time.Second, nil)))
	select {
	case got := <-f.closed:
		if got != "1008 token expired" {
			t.Fatalf("closed with %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not closed at the token's expiry")
	}
	g.handleWeb(f, webInvite("late", "t4", ""))
	if res := f.expectStatus(t); res.StatusCode != 403 {
		t.Fatalf("INVITE after expiry: %d", res.StatusCode)
	}
}
