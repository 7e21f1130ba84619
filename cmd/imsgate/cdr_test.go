package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/cdr"
)

// TestLoopbackCDRs: an answered call with two digits, one the core
// rejects (486), one the browser cancels while it rings and one whose
// browser's WebSocket drops get a record each, while the webhook answers
// 503; the gateway restarts in between; once the webhook answers, every
// record reaches it, and the file has them all, with what each call was.
func TestLoopbackCDRs(t *testing.T) {
	noLeaks(t)
	var up atomic.Bool
	var mu sync.Mutex
	got := map[string]cdr.Record{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !up.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var rec cdr.Record
		if err := json.Unmarshal(body, &rec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[rec.ID] = rec
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "cdr.jsonl")
	r := newRigWith(t, "127.0.0.1", func(c *configs.Config) {
		c.CDR = configs.CDR{File: file, Webhook: hook.URL, SpoolDir: filepath.Join(dir, "spool")}
		c.Calls.ReconnectGrace = 0 // a dropped WebSocket ends its calls at once
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := r.browser(ctx, "alice")

	answered := echoCall(t, ctx, alice, 10)
	for _, d := range []string{"7", "3"} {
		if res, err := answered.SendDTMF(ctx, d); err != nil || res.StatusCode != 200 {
			t.Fatalf("dtmf: %v, %v", res, err)
		}
	}
	if err := answered.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	busy, err := alice.Invite(ctx, "sip:busy@"+domain)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := busy.Result(ctx); err != nil || res.StatusCode != 486 {
		t.Fatalf("busy: %v, %v", res, err)
	}
	waitFor(t, ctx, "two records spooled", func() bool { return r.gw.cdr.Stats().Pending == 2 })

	r.restart()
	alice = r.browser(ctx, "alice")
	ringing, err := alice.Invite(ctx, "sip:ring@"+domain)
	if err != nil {
		t.Fatal(err)
	}
	waitRinging(t, ctx, ringing)
	if err := ringing.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := ringing.Result(ctx); err != nil || res.StatusCode != 487 {
		t.Fatalf("cancel: %v, %v", res, err)
	}
	bob := r.browser(ctx, "bob")
	echoCall(t, ctx, bob, 0)
	bob.Close()
	waitFor(t, ctx, "four records spooled", func() bool { return r.gw.cdr.Stats().Pending == 4 })
	if st := r.gw.cdr.Stats(); st.Failures == 0 || st.Delivered != 0 {
		t.Fatalf("with the webhook down: %+v", st)
	}

	up.Store(true)
	waitFor(t, ctx, "every record delivered", func() bool { return r.gw.cdr.Stats().Pending == 0 })
	mu.Lock()
	defer mu.Unlock()
	want := map[string]struct {
		callee, reason, by string
		status             int
		answered           bool
	}{
		"hangup":      {"sip:echo@" + domain, "hangup", "web", 0, true},
		"rejected":    {"sip:busy@" + domain, "rejected", "core", 486, false},
		"canceled":    {"sip:ring@" + domain, "canceled", "web", 487, false},
		"flow_closed": {"sip:echo@" + domain, "flow_closed", "web", 0, true},
	}
	if len(got) != len(want) {
		t.Errorf("the webhook got %d records, want %d: %+v", len(got), len(want), got)
	}
	for _, rec := range got {
		w, ok := want[rec.EndReason]
		if !ok || rec.Callee != w.callee || rec.EndedBy != w.by || rec.Status != w.status || (rec.Answer != nil) != w.answered {
			t.Errorf("record %+v; want %+v", rec, w)
		}
		if rec.WebCallID == "" || rec.CoreCallID == "" || rec.Caller == "" || rec.End.Before(rec.Start) {
			t.Errorf("record %+v lacks identities or times", rec)
		}
		if rec.EndReason == "hangup" {
			if rec.DTMFDigits != 2 || rec.Codec == "" || rec.MediaPath != "udp" || rec.WebToCore.Packets == 0 || rec.CoreToWeb.Packets == 0 || rec.PostDialDelayMs == nil {
				t.Errorf("answered call's record %+v", rec)
			}
		}
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
	}
	if lines != len(want) {
		t.Errorf("%s has %d records, want %d", file, lines, len(want))
	}
}
