package democore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/imsgate/imsgate/cmd/imsgate/democore"
)

func TestRegisterDigest(t *testing.T) {
	core := startCore(t, democore.Options{Users: map[string]string{"alice": "secret"}})
	alice := newPeer(t, "alice", nil)
	ctx := testCtx(t)
	contact := "<" + alice.contact().String() + ">"

	t.Run("challenge without credentials", func(t *testing.T) {
		res, err := alice.register(ctx, core, []string{contact}, 600, "")
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		if res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("status = %d, want 401", res.StatusCode)
		}
		h := res.GetHeader("WWW-Authenticate")
		if h == nil || !strings.Contains(h.Value(), `qop="auth"`) || !strings.Contains(h.Value(), "MD5") {
			t.Fatalf("WWW-Authenticate = %v", h)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		res, err := alice.register(ctx, core, []string{contact}, 600, "wrong")
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		if res.StatusCode != sip.StatusUnauthorized {
			t.Fatalf("status = %d, want 401", res.StatusCode)
		}
		if n := len(core.Bindings(alice.aor())); n != 0 {
			t.Fatalf("bindings = %d, want 0", n)
		}
	})
	t.Run("digest then 200 lists binding", func(t *testing.T) {
		res, err := alice.register(ctx, core, []string{contact}, 600, "secret")
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		if res.StatusCode != sip.StatusOK {
			t.Fatalf("status = %d, want 200", res.StatusCode)
		}
		cs := res.GetHeaders("Contact")
		if len(cs) != 1 || !strings.Contains(cs[0].Value(), alice.contact().String()) || !strings.Contains(cs[0].Value(), "expires=600") {
			t.Fatalf("200 Contact = %v", cs)
		}
		bs := core.Bindings(alice.aor())
		if len(bs) != 1 || bs[0].Contact != alice.contact().String() {
			t.Fatalf("bindings = %+v", bs)
		}
		if bs[0].Expires <= 590*time.Second || bs[0].Expires > 600*time.Second {
			t.Fatalf("expires = %v", bs[0].Expires)
		}
	})
	t.Run("expires capped at 3600", func(t *testing.T) {
		res, err := alice.register(ctx, core, []string{contact}, 7200, "secret")
		if err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("register: %v %v", res, err)
		}
		if bs := core.Bindings(alice.aor()); len(bs) != 1 || bs[0].Expires > time.Hour {
			t.Fatalf("bindings = %+v", bs)
		}
	})
	t.Run("expires 0 removes", func(t *testing.T) {
		res, err := alice.register(ctx, core, []string{contact}, 0, "secret")
		if err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("register: %v %v", res, err)
		}
		if bs := core.Bindings(alice.aor()); len(bs) != 0 {
			t.Fatalf("bindings = %+v", bs)
		}
	})
}

// TestRegisterNonceReplay replays one Authorization (same nonce, next nc)
// as the gateway does to unregister when a WebSocket closes.
func TestRegisterNonceReplay(t *testing.T) {
	core := startCore(t, democore.Options{Users: map[string]string{"alice": "secret"}})
	alice := newPeer(t, "alice", nil)
	ctx := testCtx(t)
	contact := "<" + alice.contact().String() + ">"

	res, err := alice.register(ctx, core, []string{contact}, 600, "secret")
	if err != nil || res.StatusCode != sip.StatusOK {
		t.Fatalf("register: %v %v", res, err)
	}
	// Reuse the nonce: take a 401, then answer it twice.
	first, err := alice.register(ctx, core, []string{contact}, 600, "")
	if err != nil || first.StatusCode != sip.StatusUnauthorized {
		t.Fatalf("challenge: %v %v", first, err)
	}
	chal, err := digest.ParseChallenge(first.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatalf("parse challenge: %v", err)
	}
	callID := sip.CallIDHeader("replay-" + sip.GenerateTagN(8))
	for i, expires := range []string{"600", "0"} {
		recipient := sip.Uri{Scheme: "sip", Host: core.uri("").Host, Port: core.uri("").Port}
		req := sip.NewRequest(sip.REGISTER, recipient)
		to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: domain}}
		req.AppendHeader(to)
		req.AppendHeader(&sip.FromHeader{Address: to.Address, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}})
		req.AppendHeader(&callID)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(10 + i), MethodName: sip.REGISTER})
		req.AppendHeader(sip.NewHeader("Contact", contact))
		req.AppendHeader(sip.NewHeader("Expires", expires))
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: recipient.Addr(), Username: "alice", Password: "secret", Count: i + 1})
		if err != nil {
			t.Fatalf("digest: %v", err)
		}
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
		res, err := alice.cli.Do(ctx, req)
		if err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("replay %d (expires %s): %v %v", i, expires, res, err)
		}
	}
	if bs := core.Bindings(alice.aor()); len(bs) != 0 {
		t.Fatalf("bindings after unregister = %+v", bs)
	}
}

func TestRegisterContacts(t *testing.T) {
	core := startCore(t, democore.Options{})
	bob := newPeer(t, "bob", nil)
	ctx := testCtx(t)
	c1 := "<sip:bob-1@127.0.0.1:5001>"
	c2 := "<sip:bob-2@127.0.0.1:5002;transport=tcp>;expires=120"

	res, err := bob.register(ctx, core, []string{c1}, 300, "")
	if err != nil || res.StatusCode != sip.StatusOK {
		t.Fatalf("register 1: %v %v", res, err)
	}
	res, err = bob.register(ctx, core, []string{c2}, 300, "")
	if err != nil || res.StatusCode != sip.StatusOK {
		t.Fatalf("register 2: %v %v", res, err)
	}
	if n := len(res.GetHeaders("Contact")); n != 2 {
		t.Fatalf("200 lists %d contacts, want 2", n)
	}
	bs := core.Bindings(bob.aor())
	if len(bs) != 2 {
		t.Fatalf("bindings = %+v", bs)
	}
	if bs[0].Contact != "sip:bob-1@127.0.0.1:5001" || bs[1].Contact != "sip:bob-2@127.0.0.1:5002;transport=tcp" {
		t.Fatalf("bindings = %+v", bs)
	}
	if bs[1].Expires > 120*time.Second || bs[0].Expires <= 120*time.Second {
		t.Fatalf("contact expires param ignored: %+v", bs)
	}

	t.Run("contact expires=0 removes one", func(t *testing.T) {
		res, err := bob.register(ctx, core, []string{"<sip:bob-1@127.0.0.1:5001>;expires=0"}, -1, "")
		if err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("register: %v %v", res, err)
		}
		if bs := core.Bindings(bob.aor()); len(bs) != 1 || bs[0].Contact != "sip:bob-2@127.0.0.1:5002;transport=tcp" {
			t.Fatalf("bindings = %+v", bs)
		}
	})
	t.Run("star removes all", func(t *testing.T) {
		res, err := bob.register(ctx, core, []string{"*"}, 0, "")
		if err != nil || res.StatusCode != sip.StatusOK {
			t.Fatalf("register: %v %v", res, err)
		}
		if bs := core.Bindings(bob.aor()); len(bs) != 0 {
			t.Fatalf("bindings = %+v", bs)
		}
	})
	t.Run("query lists without change", func(t *testing.T) {
		if _, err := bob.register(ctx, core, []string{c1}, 300, ""); err != nil {
			t.Fatal(err)
		}
		res, err := bob.register(ctx, core, nil, -1, "")
		if err != nil || res.StatusCode != sip.StatusOK || len(res.GetHeaders("Contact")) != 1 {
			t.Fatalf("query: %v %v", res, err)
		}
	})
}

func TestRegisterBadRequest(t *testing.T) {
	core := startCore(t, democore.Options{})
	p := newPeer(t, "carol", nil)
	ctx := testCtx(t)
	tests := []struct {
		name     string
		contacts []string
		expires  int
	}{
		{name: "unparsable contact", contacts: []string{"<sip:>"}},
		{name: "star with expires", contacts: []string{"*"}, expires: 60},
		{name: "bad contact expires", contacts: []string{"<sip:carol@127.0.0.1:5003>;expires=soon"}, expires: 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.register(ctx, core, tc.contacts, tc.expires, "")
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			if res.StatusCode != sip.StatusBadRequest {
				t.Fatalf("status = %d, want 400", res.StatusCode)
			}
		})
	}
}
