package cdr

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/imsgate/imsgate/b2bua"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestRecordOf(t *testing.T) {
	ringing, answered := t0.Add(800*time.Millisecond), t0.Add(3*time.Second)
	tests := []struct {
		name      string
		call      b2bua.CallInfo
		cause     b2bua.Cause
		pdd, dur  int64 // -1: no post-dial delay
		reason    string
		answerSet bool
	}{
		{"answered after ringing", b2bua.CallInfo{Started: t0, Ringing: ringing, Answered: answered},
			b2bua.Cause{Reason: b2bua.EndHangup, By: b2bua.SideWeb}, 800, 57000, "hangup", true},
		{"answered at once", b2bua.CallInfo{Started: t0, Answered: answered},
			b2bua.Cause{Reason: b2bua.EndHangup, By: b2bua.SideCore}, 3000, 57000, "hangup", true},
		{"rejected", b2bua.CallInfo{Started: t0},
			b2bua.Cause{Reason: b2bua.EndRejected, By: b2bua.SideCore, Status: 486}, -1, 0, "rejected", false},
		{"canceled while ringing", b2bua.CallInfo{Started: t0, Ringing: ringing},
			b2bua.Cause{Reason: b2bua.EndCanceled, By: b2bua.SideWeb}, 800, 0, "canceled", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recordOf(tt.call, tt.cause, t0.Add(time.Minute))
			if (r.PostDialDelayMs == nil) != (tt.pdd < 0) || (r.PostDialDelayMs != nil && *r.PostDialDelayMs != tt.pdd) {
				t.Errorf("post-dial delay %v, want %d", r.PostDialDelayMs, tt.pdd)
			}
			if r.DurationMs != tt.dur || r.EndReason != tt.reason || (r.Answer != nil) != tt.answerSet {
				t.Errorf("record %+v", r)
			}
		})
	}
}

// TestFileRotation: by size before a line would pass the limit, and by
// age; every line is in exactly one file.
func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	now := t0
	clock := func() time.Time { return now }
	f, err := openRotating(filepath.Join(dir, "sub", "cdr.jsonl"), 25, time.Hour, clock) // the directory made
	dir = filepath.Join(dir, "sub")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"0123456789\n", "0123456789\n", "0123456789\n"} { // 11 bytes each
		now = now.Add(time.Second)
		if rerr, err := f.write([]byte(line)); err != nil || rerr != nil {
			t.Fatal(err, rerr)
		}
	}
	now = now.Add(2 * time.Hour)
	if rerr, err := f.write([]byte("late\n")); err != nil || rerr != nil {
		t.Fatal(err, rerr)
	}
	_ = f.close()
	files, _ := filepath.Glob(filepath.Join(dir, "cdr.jsonl*"))
	total := 0
	for _, p := range files {
		b, _ := os.ReadFile(p)
		total += len(b)
		if len(b) > 25 {
			t.Errorf("%s holds %d bytes, over 25", p, len(b))
		}
	}
	if len(files) != 3 || total != 38 {
		t.Errorf("files %v, %d bytes in all; want 3 files, 38 bytes", files, total)
	}
}

// TestRotationFailureKeepsWriting: when the file cannot be moved aside
// (the name is taken by a directory), lines go on into the same file and
// the rotation is tried again a minute later.
func TestRotationFailureKeepsWriting(t *testing.T) {
	dir := t.TempDir()
	now := t0
	path := filepath.Join(dir, "cdr.jsonl")
	f, err := openRotating(path, 10, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	// The name the first rotation will take.
	if err := os.MkdirAll(path+"."+now.UTC().Format("20060102T150405.000000000Z")+"/x", 0o750); err != nil {
		t.Fatal(err)
	}
	for i, line := range []string{"0123456789\n", "abcdefghij\n", "ABCDEFGHIJ\n"} {
		rerr, err := f.write([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if (rerr != nil) != (i == 1) {
			t.Errorf("line %d: rotation error %v (only the second line's rotation should fail, the third waits)", i, rerr)
		}
	}
	b, _ := os.ReadFile(path)
	if len(b) != 33 {
		t.Errorf("the file holds %d bytes, want all 33", len(b))
	}
	now = now.Add(2 * rotateRetry)
	if rerr, err := f.write([]byte("late\n")); err != nil || rerr != nil {
		t.Fatalf("after the retry delay: %v %v", rerr, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "late\n" {
		t.Errorf("after rotating: %q", b)
	}
}

// webhook is a test receiver that refuses with 503 until up.
type webhook struct {
	up   atomic.Bool
	mu   sync.Mutex
	got  []Record
	keys []string
	auth []string
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.up.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, rec)
	h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *webhook) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for _, r := range h.got {
		ids = append(ids, r.ID)
	}
	return ids
}

func end(w *Writer, id string, reason b2bua.EndReason) {
	w.CallEnded(b2bua.CallInfo{ID: id, Origin: b2bua.SideWeb, Started: t0}, b2bua.Cause{Reason: reason, By: b2bua.SideWeb}, t0.Add(time.Second))
}

// TestWebhookDownRestartUp: records made while the webhook refuses, some
// before a restart and some after, all reach it once it answers, in the
// order the calls ended, with their ids as Idempotency-Key and the token;
// the file has them all; a challenged INVITE gets no record.
func TestWebhookDownRestartUp(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	hook := &webhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir := t.TempDir()
	cfg := Config{File: filepath.Join(dir, "cdr.jsonl"), Webhook: srv.URL, WebhookToken: "tok", SpoolDir: filepath.Join(dir, "spool")}

	w, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	end(w, "a", b2bua.EndHangup)
	end(w, "x", b2bua.EndChallenged)
	end(w, "b", b2bua.EndRejected)
	eventually(t, "two failed attempts", func() bool { return w.Stats().Failures >= 2 })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Pending != 2 || st.Written != 2 || st.Delivered != 0 {
		t.Fatalf("before the restart: %+v", st)
	}

	w, err = New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	end(w, "c", b2bua.EndCanceled)
	end(w, "d", b2bua.EndFlowClosed)
	eventually(t, "four records spooled", func() bool { return w.Stats().Pending == 4 })
	hook.up.Store(true)
	eventually(t, "all delivered", func() bool { return w.Stats().Pending == 0 })
	if ids := hook.ids(); len(ids) != 4 || ids[0] != "a" || ids[1] != "b" || ids[2] != "c" || ids[3] != "d" {
		t.Errorf("webhook got %v, want a b c d", ids)
	}
	for i := range hook.keys {
		if hook.keys[i] != hook.got[i].ID || hook.auth[i] != "Bearer tok" {
			t.Errorf("POST %d: Idempotency-Key %q, Authorization %q", i, hook.keys[i], hook.auth[i])
		}
	}
	f, _ := os.Open(cfg.File)
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
	}
	if lines != 4 {
		t.Errorf("file has %d records, want 4", lines)
	}
}

// TestSpoolFull: past SpoolMax a record is not spooled (it is logged in
// full) and counted lost; the file still has it.
func TestSpoolFull(t *testing.T) {
	hook := &webhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir := t.TempDir()
	w, err := New(Config{File: filepath.Join(dir, "cdr.jsonl"), Webhook: srv.URL, SpoolDir: dir + "/spool", SpoolMax: 1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	end(w, "a", b2bua.EndHangup)
	end(w, "b", b2bua.EndHangup)
	eventually(t, "one spooled, one lost, both written", func() bool {
		st := w.Stats()
		return st.Pending == 1 && st.Lost == 1 && st.Written == 2
	})
}

// TestWebhookRefusesOneForGood: a record the webhook answers 422 is moved
// to rejected/ and counted; the records behind it are delivered.
func TestWebhookRefusesOneForGood(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec Record
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &rec)
		if rec.ID == "poison" {
			http.Error(w, "no", http.StatusUnprocessableEntity)
			return
		}
		mu.Lock()
		got = append(got, rec.ID)
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	w, err := New(Config{Webhook: srv.URL, SpoolDir: dir}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	end(w, "poison", b2bua.EndHangup)
	end(w, "fine", b2bua.EndHangup)
	eventually(t, "the good one delivered", func() bool { return w.Stats().Delivered == 1 })
	if st := w.Stats(); st.Rejected != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "rejected", spoolPrefix+"*")); len(files) != 1 {
		t.Errorf("rejected/ holds %v", files)
	}
}

func TestSpoolDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Webhook: "http://127.0.0.1:9/", SpoolDir: filepath.Join(file, "spool")}, zaptest.NewLogger(t))
	if err == nil || !strings.Contains(err.Error(), "cdr.spool_dir") {
		t.Fatalf("a spool under a file: %v, want an error naming cdr.spool_dir", err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
