package load

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareMarkdown(t *testing.T) {
	peerCalls := &Result{Mode: "calls", Label: "kamailio+rtpengine", Command: "imsgate-load calls -label kamailio+rtpengine",
		Calls: &CallsResult{Held: 500, OK: 500, CPUPerCallMinute: 0.30, Setup: Percentiles{P50: 2}}}
	oursCalls := &Result{Mode: "calls", Label: "imsgate",
		Calls: &CallsResult{Held: 500, OK: 500, CPUPerCallMinute: 0.10, Setup: Percentiles{P50: 1}}}
	oursIdle := &Result{Mode: "idle", Label: "imsgate", Idle: &IdleResult{Up: 1000, RSSPerClientKiB: 8}}
	tests := []struct {
		name    string
		in      []*Result
		want    []string
		notWant []string
		wantErr error
	}{
		{
			name: "peer first",
			in:   []*Result{peerCalls, oursCalls},
			want: []string{"| metric | kamailio+rtpengine | imsgate | imsgate/kamailio+rtpengine |",
				"| gateway CPU per call-minute (CPU s) | 0.3000 | 0.1000 | 0.33 |", "| setup INVITE→200 p50 (ms) | 2.00 | 1.00 | 0.50 |",
				"`imsgate-load calls -label kamailio+rtpengine`"},
			notWant: []string{"idle client"},
		},
		{
			name: "imsgate first is still the numerator",
			in:   []*Result{oursCalls, peerCalls},
			want: []string{"| metric | kamailio+rtpengine | imsgate | imsgate/kamailio+rtpengine |"},
		},
		{
			name: "idle merged by label",
			in:   []*Result{peerCalls, oursCalls, oursIdle},
			want: []string{"| gateway RSS per idle client (KiB) | — | 8.00 | — |"},
		},
		{name: "one label", in: []*Result{oursCalls, oursIdle}, wantErr: ErrBadResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CompareMarkdown(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("table lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("table has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	in := &Result{Mode: "calls", Label: "imsgate", Machine: ThisMachine(),
		Calls: &CallsResult{OK: 3, Failures: map[string]int{"invite: status 503": 1}, RTT: Percentiles{P99: 1.5}}}
	if err := in.WriteJSON(path); err != nil {
		t.Fatalf("write: %v", err)
	}
	out, err := ReadResult(path)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if out.Calls == nil || out.Calls.OK != 3 || out.Calls.Failures["invite: status 503"] != 1 || out.Calls.RTT.P99 != 1.5 {
		t.Errorf("round trip lost data: %+v", out.Calls)
	}
	if out.Machine.CPUs == 0 {
		t.Error("machine lost")
	}
}
