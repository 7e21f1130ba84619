package democore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/imsgate/imsgate/cmd/imsgate/democore"
)

// byePeer is a peer that answers BYE with 200 and reports its Call-ID.
func byePeer(t *testing.T, user string) (*peer, <-chan string) {
	byes := make(chan string, 4)
	p := newPeer(t, user, func(srv *sipgo.Server) {
		srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
			byes <- req.CallID().Value()
		})
	})
	return p, byes
}

func (p *peer) invite(ctx context.Context, core *testCore, user string, body []byte) (*sipgo.DialogClientSession, error) {
	dua := &sipgo.DialogUA{Client: p.cli, ContactHDR: sip.ContactHeader{Address: *p.contact()}}
	return dua.Invite(ctx, core.uri(user), body, sip.NewHeader("Content-Type", "application/sdp"))
}

func findEcho(core *testCore, callID string) (democore.EchoCall, bool) {
	for _, e := range core.EchoCalls() {
		if e.CallID == callID {
			return e, true
		}
	}
	return democore.EchoCall{}, false
}

func TestEchoCall(t *testing.T) {
	tests := []struct {
		name      string
		formats   string
		extra     string
		wantCodec string
		wantEvent bool
	}{
		{name: "pcmu with telephone-event", formats: "0 8 101", extra: "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n", wantCodec: "PCMU", wantEvent: true},
		{name: "first known codec wins", formats: "96 8 0", extra: "a=rtpmap:96 iLBC/8000\r\n", wantCodec: "PCMA"},
		{name: "opus dynamic pt", formats: "111 0", extra: "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n", wantCodec: "opus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A short AnswerDelay keeps 180 and 200 apart: sipgo handles each
			// received message on its own goroutine and may reorder them.
			core := startCore(t, democore.Options{AnswerDelay: 50 * time.Millisecond})
			p, _ := byePeer(t, "web")
			media := newRTPSocket(t)
			ctx := testCtx(t)

			sess, err := p.invite(ctx, core, "echo", media.offer(tc.formats, tc.extra))
			if err != nil {
				t.Fatalf("invite: %v", err)
			}
			var sawRinging bool
			err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
				if res.StatusCode == sip.StatusRinging {
					sawRinging = true
				}
				return nil
			}})
			if err != nil {
				t.Fatalf("wait answer: %v", err)
			}
			if !sawRinging {
				t.Errorf("no 180 before 200")
			}
			if err := sess.Ack(ctx); err != nil {
				t.Fatalf("ack: %v", err)
			}
			answer := sess.InviteResponse.Body()
			dst, desc := sdpAudioAddr(t, answer)
			formats := desc.MediaDescriptions[0].MediaName.Formats
			if tc.wantEvent != (len(formats) == 2 && formats[1] == "101") {
				t.Errorf("answer formats = %v, telephone-event wanted %v", formats, tc.wantEvent)
			}

			media.sendRTP(t, dst, 10)
			media.readRTP(t, 10, 5e9)

			callID := sess.InviteRequest.CallID().Value()
			eventually(t, "echo counters", func() bool {
				e, ok := findEcho(core, callID)
				return ok && e.PacketsIn == 10 && e.PacketsOut == 10
			})
			e, _ := findEcho(core, callID)
			if e.State != "answered" || e.Codec != tc.wantCodec {
				t.Fatalf("echo call = %+v", e)
			}

			if err := sess.Bye(ctx); err != nil {
				t.Fatalf("bye: %v", err)
			}
			e, _ = findEcho(core, callID)
			if e.State != "ended" || e.EndedBy != "remote" {
				t.Fatalf("after bye: %+v", e)
			}
		})
	}
}

func TestEchoFinalResponses(t *testing.T) {
	tests := []struct {
		name       string
		user       string
		cancel     bool
		wantStatus int
		wantState  string
	}{
		{name: "ring then cancel", user: "ring", cancel: true, wantStatus: sip.StatusRequestTerminated, wantState: "canceled"},
		{name: "busy", user: "busy", wantStatus: sip.StatusBusyHere, wantState: "failed"},
		{name: "unknown user", user: "nobody", wantStatus: sip.StatusNotFound},
		{name: "known but unregistered", user: "bob", wantStatus: sip.StatusTemporarilyUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core := startCore(t, democore.Options{Users: map[string]string{"bob": "pw"}})
			p, _ := byePeer(t, "web")
			media := newRTPSocket(t)
			ctx := testCtx(t)

			sess, err := p.invite(ctx, core, tc.user, media.offer("0", ""))
			if err != nil {
				t.Fatalf("invite: %v", err)
			}
			waitCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			var ringTag string
			err = sess.WaitAnswer(waitCtx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
				if res.StatusCode == sip.StatusRinging {
					ringTag, _ = res.To().Params.Get("tag")
					if tc.cancel {
						cancel()
					}
				}
				return nil
			}})
			var status int
			var dialogErr *sipgo.ErrDialogResponse
			switch {
			case tc.cancel && errors.Is(err, context.Canceled):
				status = sess.InviteResponse.StatusCode
				if tag, _ := sess.InviteResponse.To().Params.Get("tag"); tag != ringTag || tag == "" {
					t.Errorf("487 To tag %q differs from 180 tag %q", tag, ringTag)
				}
			case errors.As(err, &dialogErr):
				status = dialogErr.Res.StatusCode
			default:
				t.Fatalf("wait answer: %v", err)
			}
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", status, tc.wantStatus)
			}
			if tc.wantState != "" {
				callID := sess.InviteRequest.CallID().Value()
				eventually(t, "echo state "+tc.wantState, func() bool {
					e, ok := findEcho(core, callID)
					return ok && e.State == tc.wantState
				})
			}
		})
	}
}

func TestHangUpEcho(t *testing.T) {
	core := startCore(t, democore.Options{})
	p, byes := byePeer(t, "web")
	media := newRTPSocket(t)
	ctx := testCtx(t)

	sess, err := p.invite(ctx, core, "echo", media.offer("0", ""))
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("wait answer: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatalf("ack: %v", err)
	}
	callID := sess.InviteRequest.CallID().Value()
	if err := core.HangUpEcho(ctx, callID); err != nil {
		t.Fatalf("hang up echo: %v", err)
	}
	if got := waitFor(t, byes, "BYE at peer"); got != callID {
		t.Fatalf("BYE for %q, want %q", got, callID)
	}
	e, _ := findEcho(core, callID)
	if e.State != "ended" || e.EndedBy != "core" {
		t.Fatalf("echo call = %+v", e)
	}
	if err := core.HangUpEcho(ctx, callID); !errors.Is(err, democore.ErrCallEnded) {
		t.Fatalf("second hang up: %v, want ErrCallEnded", err)
	}
	if err := core.HangUpEcho(ctx, "nope"); !errors.Is(err, democore.ErrUnknownCall) {
		t.Fatalf("unknown hang up: %v, want ErrUnknownCall", err)
	}
}
