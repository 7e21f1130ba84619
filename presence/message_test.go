package presence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// fakeSide answers requests with a status per target, and records them.
type fakeSide struct {
	mu      sync.Mutex
	got     []*sip.Request
	status  map[string]int // by Request-URI user, or flow; default 200
	devices []Device
}

func (f *fakeSide) answer(key string, req *sip.Request) (*sip.Response, error) {
	f.mu.Lock()
	f.got = append(f.got, req)
	code, ok := f.status[key]
	f.mu.Unlock()
	if !ok {
		code = 200
	}
	if code == 0 {
		return nil, errors.New("no answer")
	}
	return sip.NewResponseFromRequest(req, code, "X", nil), nil
}

func (f *fakeSide) Request(_ context.Context, req *sip.Request) (*sip.Response, error) {
	return f.answer(req.Recipient.User, req)
}

func (f *fakeSide) Contact(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: "gw.test"}
}

type fakeFlows struct{ *fakeSide }

func (f fakeFlows) Request(_ context.Context, flow string, req *sip.Request) (*sip.Response, error) {
	return f.answer(flow, req)
}

func (f fakeFlows) Device(user string) (Device, bool) {
	for _, d := range f.devices {
		if d.Contact.User == user {
			return d, true
		}
	}
	return Device{}, false
}

func (f fakeFlows) Devices(sip.Uri) []Device { return f.devices }

func message(to string, body string) *sip.Request {
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: to, Host: "imsgate.test"})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "imsgate.test"}, Params: sip.NewParams()}
	from.Params.Add("tag", "a1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: "imsgate.test"}, Params: sip.NewParams()})
	cid := sip.CallIDHeader("m1")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.AppendHeader(sip.NewHeader("Authorization", `Digest username="alice"`))
	req.SetBody([]byte(body))
	return req
}

func await(t *testing.T, ch chan *sip.Response) *sip.Response {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	return nil
}

func TestMessageRelay(t *testing.T) {
	carol := Device{Flow: "f-carol", Contact: sip.Uri{Scheme: "sip", User: "c1", Host: "x.invalid"}}
	carol2 := Device{Flow: "f-carol2", Contact: sip.Uri{Scheme: "sip", User: "c2", Host: "y.invalid"}}
	tests := []struct {
		name     string
		fromWeb  bool
		to       string
		body     string
		devices  []Device
		status   map[string]int
		want     int
		wantSent int
	}{
		{name: "browser to a number behind the core", fromWeb: true, to: "+15551234", body: "héllo ✓", want: 200, wantSent: 1},
		{name: "the core's refusal reaches the browser", fromWeb: true, to: "nobody", body: "x", status: map[string]int{"nobody": 404}, want: 404, wantSent: 1},
		{name: "no answer from the core", fromWeb: true, to: "slow", body: "x", status: map[string]int{"slow": 0}, want: 408, wantSent: 1},
		{name: "too large", fromWeb: true, to: "bob", body: string(make([]byte, 70<<10)), want: 413},
		{name: "core to the AoR: every device", to: "carol", body: "hi", devices: []Device{carol, carol2}, want: 200, wantSent: 2},
		{name: "core to one device's contact", to: "c2", body: "hi", devices: []Device{carol, carol2}, want: 200, wantSent: 1},
		{name: "one device refuses, the other takes it", to: "carol", body: "hi", devices: []Device{carol, carol2},
			status: map[string]int{"f-carol": 486}, want: 200, wantSent: 2},
		{name: "every device refuses: the best failure", to: "carol", body: "hi", devices: []Device{carol, carol2},
			status: map[string]int{"f-carol": 603, "f-carol2": 480}, want: 480, wantSent: 2},
		{name: "nobody registered", to: "dave", body: "hi", want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			side := &fakeSide{status: tt.status, devices: tt.devices}
			r := New(fakeFlows{side}, side, fakeFlows{side}, DefaultLimits, zap.NewNop())
			req := message(tt.to, tt.body)
			got := make(chan *sip.Response, 1)
			if tt.fromWeb {
				r.FromWeb("f-alice", req, func(res *sip.Response) { got <- res })
			} else {
				r.FromCore(req, func(res *sip.Response) { got <- res })
			}
			res := await(t, got)
			if res.StatusCode != tt.want || !res.To().Params.Has("tag") {
				t.Fatalf("got %d, want %d (with our To tag)", res.StatusCode, tt.want)
			}
			// The first 2xx answers at once; the other devices' sends go on.
			side.mu.Lock()
			defer side.mu.Unlock()
			for deadline := time.Now().Add(5 * time.Second); len(side.got) < tt.wantSent && time.Now().Before(deadline); {
				side.mu.Unlock()
				time.Sleep(time.Millisecond)
				side.mu.Lock()
			}
			if len(side.got) != tt.wantSent {
				t.Fatalf("%d requests sent on, want %d", len(side.got), tt.wantSent)
			}
			for _, out := range side.got {
				if string(out.Body()) != tt.body || out.GetHeader("Content-Type").Value() != "text/plain;charset=UTF-8" {
					t.Errorf("body or type changed: %q %v", out.Body(), out.GetHeader("Content-Type"))
				}
				if out.CallID().Value() == "m1" || tagOf(out.From().Params) == "a1" {
					t.Error("a relayed MESSAGE has our own Call-ID and tag")
				}
				if tt.fromWeb && out.GetHeader("Authorization") == nil {
					t.Error("the browser's credentials must reach the core")
				}
			}
		})
	}
}

// TestMessageRateLimit: past its burst a connection gets 429 with
// Retry-After; another connection is not affected.
func TestMessageRateLimit(t *testing.T) {
	side := &fakeSide{}
	r := New(fakeFlows{side}, side, fakeFlows{side}, Limits{MaxBodyBytes: 1024, MessageRate: 0.001, MessageBurst: 3}, zap.NewNop())
	codes := map[int]int{}
	for range 5 {
		got := make(chan *sip.Response, 1)
		r.FromWeb("f1", message("bob", "x"), func(res *sip.Response) { got <- res })
		res := await(t, got)
		codes[res.StatusCode]++
		if res.StatusCode == 429 && res.GetHeader("Retry-After") == nil {
			t.Fatal("429 must say when to retry")
		}
	}
	if codes[200] != 3 || codes[429] != 2 {
		t.Fatalf("codes %v, want 3×200 and 2×429", codes)
	}
	got := make(chan *sip.Response, 1)
	r.FromWeb("f2", message("bob", "x"), func(res *sip.Response) { got <- res })
	if res := await(t, got); res.StatusCode != 200 {
		t.Fatalf("another connection got %d", res.StatusCode)
	}
	r.Forget("f1")
	r.FromWeb("f1", message("bob", "x"), func(res *sip.Response) { got <- res })
	if res := await(t, got); res.StatusCode != 200 {
		t.Fatalf("a new connection on a forgotten flow got %d", res.StatusCode)
	}
}
