package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no mode", nil, 2},
		{"unknown mode", []string{"bogus"}, 2},
		{"help", []string{"calls", "-h"}, 0},
		{"bad flag", []string{"calls", "-nope"}, 2},
		{"zero calls", []string{"calls", "-calls", "0"}, 2},
		{"bad sources", []string{"idle", "-sources", "localhost"}, 2},
		{"bad pids", []string{"idle", "-gateway-pids", "x"}, 2},
		{"compare needs two files", []string{"compare", bad}, 2},
		{"compare unreadable file", []string{"compare", bad, bad}, 1},
		{"bad ramp", []string{"ramp", "-start", "0"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}
