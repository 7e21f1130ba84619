package webua

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// newRegistrar is a fake registrar: it challenges every REGISTER without
// credentials (when challenge is set) and checks the digest it gets back.
func newRegistrar(t *testing.T, challenge bool, password string, seen chan<- *sip.Request) *wsPeer {
	chal := &digest.Challenge{Realm: "imsgate.test", Nonce: "n0nce", Algorithm: "MD5", QOP: []string{"auth"}}
	return newWSPeer(t, func(conn *peerConn) {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(data)
			if err != nil {
				t.Errorf("registrar: parse: %v", err)
				return
			}
			req, ok := msg.(*sip.Request)
			if !ok || req.Method != sip.REGISTER {
				continue
			}
			select {
			case seen <- req:
			default:
			}
			var res *sip.Response
			auth := req.GetHeader("Authorization")
			switch {
			case challenge && auth == nil:
				res = sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
				res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
			case challenge && !digestMatches(t, chal, req, auth.Value(), password):
				res = sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
			default:
				res = sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
				res.AppendHeader(sip.HeaderClone(req.Contact()))
			}
			if err := conn.write([]byte(res.String())); err != nil {
				return
			}
		}
	})
}

func digestMatches(t *testing.T, chal *digest.Challenge, req *sip.Request, value, password string) bool {
	cred, err := digest.ParseCredentials(value)
	if err != nil {
		t.Errorf("registrar: parse credentials: %v", err)
		return false
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: string(req.Method), URI: cred.URI, Username: cred.Username, Password: password,
		Count: cred.Nc, Cnonce: cred.Cnonce,
	})
	if err != nil {
		t.Errorf("registrar: digest: %v", err)
		return false
	}
	return cred.URI == req.Recipient.String() && cred.Username == "alice" && want.Response == cred.Response
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name      string
		challenge bool
		password  string // the registrar's; the UA always uses "secret"
		want      int
		wantSent  int // REGISTERs the registrar saw
	}{
		{name: "challenge answered", challenge: true, password: "secret", want: sip.StatusOK, wantSent: 2},
		{name: "wrong password", challenge: true, password: "other", want: sip.StatusForbidden, wantSent: 2},
		{name: "no challenge", challenge: false, want: sip.StatusOK, wantSent: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan *sip.Request, 8)
			reg := newRegistrar(t, tc.challenge, tc.password, seen)
			ua := dialUA(t, reg.url, "sip:alice@imsgate.test")
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			res, err := ua.Register(ctx, 10*time.Minute)
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			if res.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.want)
			}
			if len(seen) != tc.wantSent {
				t.Fatalf("registrar saw %d REGISTERs, want %d", len(seen), tc.wantSent)
			}
			first := <-seen
			if got := first.GetHeader("Expires").Value(); got != "600" {
				t.Errorf("expires = %s, want 600", got)
			}
			if first.Recipient.String() != "sip:imsgate.test" {
				t.Errorf("request-uri = %s, want sip:imsgate.test", first.Recipient.String())
			}
			if res.StatusCode != sip.StatusOK {
				return
			}
			res, err = ua.Unregister(ctx)
			if err != nil {
				t.Fatalf("unregister: %v", err)
			}
			if res.StatusCode != sip.StatusOK {
				t.Fatalf("unregister status = %d, want 200", res.StatusCode)
			}
			var last *sip.Request
			for len(seen) > 0 {
				last = <-seen
			}
			if got := last.GetHeader("Expires").Value(); got != "0" {
				t.Errorf("unregister expires = %s, want 0", got)
			}
			if last.CSeq().SeqNo <= first.CSeq().SeqNo || last.CallID().Value() != first.CallID().Value() {
				t.Errorf("unregister cseq/call-id %s %s does not follow %s %s",
					last.CSeq().Value(), last.CallID().Value(), first.CSeq().Value(), first.CallID().Value())
			}
		})
	}
}
