package load

import (
	"os"
	"os/exec"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			line: "123 (kamailio) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 9999 1000 10 18446744073709551615",
			want: procStat{ppid: 1, cpuTicks: 300, startTime: 9999},
		},
		{
			name: "comm with spaces and parens",
			line: "77 (a (b) c) R 42 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 555 0 0 0",
			want: procStat{ppid: 42, cpuTicks: 10, startTime: 555},
		},
		{name: "truncated", line: "1 (x) S 0 1", wantErr: true},
		{name: "no comm", line: "garbage", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDescendants(t *testing.T) {
	table := map[int]procStat{1: {ppid: 0}, 10: {ppid: 1}, 11: {ppid: 10}, 12: {ppid: 10}, 13: {ppid: 12}, 20: {ppid: 1}}
	tests := []struct {
		name  string
		roots []int
		want  int
	}{
		{"tree", []int{10}, 4},
		{"two roots", []int{11, 20}, 2},
		{"missing root", []int{99}, 0},
		{"overlapping roots count once", []int{10, 12}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := descendants(table, tt.roots); len(got) != tt.want {
				t.Errorf("descendants(%v) = %v, want %d pids", tt.roots, got, tt.want)
			}
		})
	}
}

// TestTrackerSeesChildren follows this test process and a child it starts.
func TestTrackerSeesChildren(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	tr, err := NewTracker([]int{os.Getpid()})
	if err != nil {
		t.Fatalf("tracker: %v", err)
	}
	u := tr.Usage()
	if u.Processes < 2 {
		t.Errorf("processes = %d, want this one and its child", u.Processes)
	}
	if u.RSSKiB <= 0 || u.PeakRSSKiB <= 0 {
		t.Errorf("rss %d, peak %d: want both > 0", u.RSSKiB, u.PeakRSSKiB)
	}
	if tr.OpenFDs() <= 0 {
		t.Error("no open fds seen")
	}
	if clockTicks() == 0 {
		t.Error("clock ticks 0")
	}
	self, err := newSelfTracker()
	if err != nil {
		t.Fatalf("self tracker: %v", err)
	}
	if n := self.Usage().Processes; n != 1 {
		t.Errorf("self tracker sees %d processes, want this one alone", n)
	}
	if _, err := NewTracker([]int{1 << 30}); err == nil {
		t.Error("tracker of a missing pid: no error")
	}
}
