package democore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/imsgate/imsgate/cmd/imsgate/democore"
)

// uasPeer is a registered phone that either answers (with RTP echo) or only
// rings, and reports what the core sends it.
type uasPeer struct {
	*peer
	media    *rtpSocket
	invites  chan *sip.Request
	sessions chan *sipgo.DialogServerSession
	acks     chan *sip.Request
	cancels  chan struct{}
	byes     chan string
}

func newUASPeer(t *testing.T, user string, answer bool) *uasPeer {
	t.Helper()
	u := &uasPeer{
		media:    newRTPSocket(t),
		invites:  make(chan *sip.Request, 4),
		sessions: make(chan *sipgo.DialogServerSession, 4),
		acks:     make(chan *sip.Request, 4),
		cancels:  make(chan struct{}, 4),
		byes:     make(chan string, 4),
	}
	var dua *sipgo.DialogUA
	var mu sync.Mutex
	open := map[string]*sipgo.DialogServerSession{}
	u.peer = newPeer(t, user, func(srv *sipgo.Server) {
		srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			u.invites <- req
			ds, err := dua.ReadInvite(req, tx)
			if err != nil {
				return
			}
			mu.Lock()
			open[req.CallID().Value()] = ds
			mu.Unlock()
			canceled := make(chan struct{})
			tx.OnCancel(func(*sip.Request) { close(canceled) })
			if err := ds.Respond(sip.StatusRinging, "Ringing", nil); err != nil {
				return
			}
			if !answer {
				select {
				case <-canceled:
					u.cancels <- struct{}{}
				case <-tx.Done():
				}
				return
			}
			body := u.media.offer("0 101", "a=rtpmap:101 telephone-event/8000\r\n")
			// RespondSDP returns once OnAck has confirmed the dialog.
			if err := ds.RespondSDP(body); err != nil {
				return
			}
			u.sessions <- ds
		})
		srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
			mu.Lock()
			ds := open[req.CallID().Value()]
			mu.Unlock()
			if ds != nil {
				_ = ds.ReadAck(req, tx)
			}
			u.acks <- req
		})
		srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
			u.byes <- req.CallID().Value()
		})
	})
	dua = &sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{Address: *u.contact()}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.media.echoRTP(stop)
	}()
	t.Cleanup(func() { close(stop); <-done })
	return u
}

func registerPeer(t *testing.T, ctx context.Context, core *testCore, p *peer, aorUser string) {
	t.Helper()
	saved := p.user
	p.user = aorUser
	defer func() { p.user = saved }()
	contact := "<" + (&sip.Uri{Scheme: "sip", User: saved, Host: p.contact().Host, Port: p.contact().Port}).String() + ">"
	res, err := p.register(ctx, core, []string{contact}, 600, "")
	if err != nil || res.StatusCode != sip.StatusOK {
		t.Fatalf("register %s: %v %v", aorUser, res, err)
	}
}

// callAlice starts a core, registers a UAS peer as alice (answering or
// not) and has bob call her.
func callAlice(t *testing.T, answer bool) (*testCore, *uasPeer, context.Context, *democore.OutCall) {
	t.Helper()
	core := startCore(t, democore.Options{})
	alice := newUASPeer(t, "alice", answer)
	ctx := testCtx(t)
	registerPeer(t, ctx, core, alice.peer, "alice")
	call, err := core.Call(ctx, "bob", "sip:alice@"+domain)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	return core, alice, ctx, call
}

func TestCallAnswered(t *testing.T) {
	_, alice, ctx, call := callAlice(t, true)
	status, err := call.Result(ctx)
	if err != nil || status != sip.StatusOK {
		t.Fatalf("result = %d, %v", status, err)
	}
	inv := waitFor(t, alice.invites, "INVITE at alice")
	if inv.CallID().Value() != call.CallID() {
		t.Fatalf("INVITE Call-ID %q, want %q", inv.CallID().Value(), call.CallID())
	}
	ack := waitFor(t, alice.acks, "ACK for 2xx")
	if ack.CSeq().SeqNo != inv.CSeq().SeqNo || ack.CSeq().MethodName != sip.ACK {
		t.Fatalf("ACK CSeq = %v, INVITE CSeq = %v", ack.CSeq(), inv.CSeq())
	}
	if tag, _ := ack.To().Params.Get("tag"); tag == "" {
		t.Fatalf("ACK without To tag")
	}
	eventually(t, "RTP both ways", func() bool {
		sent, received := call.Packets()
		return sent >= 5 && received >= 5
	})
	if err := call.HangUp(ctx); err != nil {
		t.Fatalf("hang up: %v", err)
	}
	if got := waitFor(t, alice.byes, "BYE at alice"); got != call.CallID() {
		t.Fatalf("BYE Call-ID %q", got)
	}
	waitFor(t, call.Ended(), "Ended after HangUp")
	if err := call.HangUp(ctx); !errors.Is(err, democore.ErrCallEnded) {
		t.Fatalf("second hang up: %v", err)
	}
}

func TestCallRemoteBye(t *testing.T) {
	_, alice, ctx, call := callAlice(t, true)
	if status, err := call.Result(ctx); status != sip.StatusOK {
		t.Fatalf("result = %d, %v", status, err)
	}
	ds := waitFor(t, alice.sessions, "answered session")
	waitFor(t, alice.acks, "ACK")
	if err := ds.Bye(ctx); err != nil {
		t.Fatalf("bye from alice: %v", err)
	}
	waitFor(t, call.Ended(), "Ended after remote BYE")
}

func TestCallFork(t *testing.T) {
	core := startCore(t, democore.Options{})
	answers := newUASPeer(t, "alice-desk", true)
	rings := newUASPeer(t, "alice-web", false)
	ctx := testCtx(t)
	registerPeer(t, ctx, core, rings.peer, "alice")
	registerPeer(t, ctx, core, answers.peer, "alice")
	if n := len(core.Bindings("sip:alice@" + domain)); n != 2 {
		t.Fatalf("bindings = %d, want 2", n)
	}

	call, err := core.Call(ctx, "bob", "sip:alice@"+domain)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if status, err := call.Result(ctx); status != sip.StatusOK {
		t.Fatalf("result = %d, %v", status, err)
	}
	inv1 := waitFor(t, answers.invites, "INVITE at desk")
	inv2 := waitFor(t, rings.invites, "INVITE at web")
	if inv1.CallID().Value() != inv2.CallID().Value() {
		t.Fatalf("forks have different Call-IDs")
	}
	b1, _ := inv1.Via().Params.Get("branch")
	b2, _ := inv2.Via().Params.Get("branch")
	if b1 == b2 {
		t.Fatalf("forks share Via branch %q", b1)
	}
	waitFor(t, answers.acks, "ACK at desk")
	waitFor(t, rings.cancels, "CANCEL at web")
	if err := call.HangUp(ctx); err != nil {
		t.Fatalf("hang up: %v", err)
	}
	waitFor(t, answers.byes, "BYE at desk")
}

func TestCallCancel(t *testing.T) {
	core := startCore(t, democore.Options{})
	a := newUASPeer(t, "alice-1", false)
	b := newUASPeer(t, "alice-2", false)
	ctx := testCtx(t)
	registerPeer(t, ctx, core, a.peer, "alice")
	registerPeer(t, ctx, core, b.peer, "alice")

	call, err := core.Call(ctx, "bob", "sip:alice@"+domain)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	waitFor(t, a.invites, "INVITE at 1")
	waitFor(t, b.invites, "INVITE at 2")
	if err := call.Cancel(ctx); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	waitFor(t, a.cancels, "CANCEL at 1")
	waitFor(t, b.cancels, "CANCEL at 2")
	status, err := call.Result(ctx)
	var se *democore.StatusError
	if status != sip.StatusRequestTerminated || !errors.As(err, &se) || se.Status != sip.StatusRequestTerminated {
		t.Fatalf("result = %d, %v; want 487", status, err)
	}
	waitFor(t, call.Ended(), "Ended after cancel")
}

func TestCallNotRegistered(t *testing.T) {
	core := startCore(t, democore.Options{})
	_, err := core.Call(testCtx(t), "bob", "sip:nobody@"+domain)
	if !errors.Is(err, democore.ErrNotRegistered) {
		t.Fatalf("call: %v, want ErrNotRegistered", err)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	core, alice, ctx, call := callAlice(t, false)
	waitFor(t, alice.invites, "INVITE")
	if err := core.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, call.Ended(), "Ended after Close")
	if status, err := call.Result(ctx); err == nil {
		t.Fatalf("result after close = %d, nil error", status)
	}
}
