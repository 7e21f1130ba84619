package b2bua

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/mediabridge"
)

func parseReq(t testing.TB, raw string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("not a request")
	}
	return req
}

const jssipRegister = `REGISTER sip:imsgate.test SIP/2.0
Via: SIP/2.0/WSS 8fj3k2l1.invalid;branch=z9hG4bK1234567
Max-Forwards: 69
To: <sip:alice@imsgate.test>
From: "Alice" <sip:alice@imsgate.test>;tag=abc123
Call-ID: reg-call-1
CSeq: 2 REGISTER
Contact: <sip:q8k2m4@8fj3k2l1.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:5c6f>";expires=600
Expires: 600
Supported: path, gruu, outbound
Content-Length: 0

`

func TestExpiresOf(t *testing.T) {
	req := parseReq(t, jssipRegister)
	cts := contacts(req)
	if len(cts) != 1 {
		t.Fatalf("contacts = %d", len(cts))
	}
	if got := expiresOf(req, cts[0], 3600); got != 600 {
		t.Fatalf("contact expires = %d, want 600", got)
	}
	cts[0].Params.Remove("expires")
	if got := expiresOf(req, cts[0], 3600); got != 600 {
		t.Fatalf("header expires = %d, want 600", got)
	}
	req.RemoveHeader("Expires")
	if got := expiresOf(req, cts[0], 3600); got != 3600 {
		t.Fatalf("default expires = %d, want 3600", got)
	}
}

func TestRegistrarBindings(t *testing.T) {
	r := newRegistrar()
	req := parseReq(t, jssipRegister)
	ct := contacts(req)[0]
	b1, _ := r.get("flow1", req.To().Address, ct, 10)
	if again, _ := r.get("flow1", req.To().Address, ct, 10); again != b1 {
		t.Fatal("a refresh must reuse the binding (same upstream Call-ID and CSeq sequence)")
	}
	b2, _ := r.get("flow2", req.To().Address, ct, 10)
	if b2 == b1 || b2.token == b1.token || b2.callID == b1.callID {
		t.Fatal("another flow for the same AoR is its own binding")
	}
	if _, ok := r.lookup(b1.token); !ok {
		t.Fatal("lookup by token")
	}
	if _, has := b1.contact.Params.Get("expires"); has {
		t.Fatal("stored contact keeps no expires param")
	}
	if got := r.takeFlow("flow1"); len(got) != 1 || got[0] != b1 {
		t.Fatalf("takeFlow = %v", got)
	}
	if _, ok := r.lookup(b1.token); ok || r.count() != 1 {
		t.Fatal("takeFlow must remove the flow's bindings")
	}
	if got := r.takeFlow("flow1"); len(got) != 0 {
		t.Fatalf("a closed flow has no bindings left, got %v", got)
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errNoBinding, 404},
		{errFlowGone, 480},
		{errTimeout, 408},
		{errDraining, 503},
		{errors.New("boom"), 500},
		{statusErr(486, "Busy Here", nil), 486},
		{mediaStatus(mediabridge.ErrNoCommonCodec), 488},
		{mediaStatus(mediabridge.ErrBadSDP), 488},
	} {
		if got := statusOf(tc.err).Code; got != tc.code {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestDialogRequest(t *testing.T) {
	d := dialog{callID: "c1", localTag: "lt", remoteTag: "rt", cseq: 4}
	d.local = sip.Uri{Scheme: "sip", User: "alice", Host: "imsgate.test"}
	d.remote = sip.Uri{Scheme: "sip", User: "echo", Host: "imsgate.test"}
	d.remoteTarget = sip.Uri{Scheme: "sip", User: "x", Host: "10.0.0.1", Port: 5060}
	d.routes = []sip.Uri{{Scheme: "sip", Host: "p1.example", UriParams: sip.HeaderParams{{K: "lr", V: ""}}}}
	bye := d.request(sip.BYE, 0)
	if seq, m := cseqOf(bye); seq != 5 || m != sip.BYE {
		t.Fatalf("BYE CSeq = %d %s", seq, m)
	}
	ack := d.request(sip.ACK, 2)
	if seq, _ := cseqOf(ack); seq != 2 {
		t.Fatalf("ACK CSeq = %d, want the INVITE's 2", seq)
	}
	if tagOf(bye.From().Params) != "lt" || tagOf(bye.To().Params) != "rt" {
		t.Fatalf("tags: %s", bye.String())
	}
	if bye.Recipient.Host != "10.0.0.1" || bye.Route() == nil || bye.Route().Address.Host != "p1.example" {
		t.Fatalf("target/route: %s", bye.String())
	}
}

func TestCancelOfMatchesInvite(t *testing.T) {
	inv := parseReq(t, `INVITE sip:echo@imsgate.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinv1
From: <sip:alice@imsgate.test>;tag=f1
To: <sip:echo@imsgate.test>
Call-ID: core-1
CSeq: 7 INVITE
Max-Forwards: 70
Content-Length: 0

`)
	c := cancelOf(inv)
	if branchOf(c) != "z9hG4bKinv1" || callIDOf(c) != "core-1" {
		t.Fatalf("cancel: %s", c.String())
	}
	if seq, m := cseqOf(c); seq != 7 || m != sip.CANCEL {
		t.Fatalf("cancel CSeq %d %s", seq, m)
	}
}

func TestSanitizeWarning(t *testing.T) {
	if got := sanitizeWarning("a \"quoted\"\nline\\"); strings.ContainsAny(got, "\"\n\\") {
		t.Fatalf("got %q", got)
	}
}
