package configs

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit: configs/imsgate.service runs as its own user with only
// CAP_NET_BIND_SERVICE, allows 100 000 connections, restarts on failure,
// stops with SIGTERM and waits out the drain, and checks the config first.
// systemd-analyze verify, where it is installed, finds nothing wrong.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("imsgate.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	for k, want := range map[string]string{
		"User":                  "imsgate",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":       "yes",
		"KillSignal":            "SIGTERM",
		"Restart":               "on-failure",
		"ExecStartPre":          "/usr/local/bin/imsgate -check -config /etc/imsgate/imsgate.yaml",
		"ExecStart":             "/usr/local/bin/imsgate -config /etc/imsgate/imsgate.yaml",
	} {
		if keys[k] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	if n, err := strconv.Atoi(keys["LimitNOFILE"]); err != nil || n < 100000 {
		t.Errorf("LimitNOFILE=%q, want at least 100000", keys["LimitNOFILE"])
	}
	// The drain (cmd/imsgate's drainTimeout) must end before systemd kills.
	if d, err := time.ParseDuration(keys["TimeoutStopSec"]); err != nil || d <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%q, want more than the 30 s drain", keys["TimeoutStopSec"])
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: the unit's syntax is not verified here")
		return
	}
	// verify also checks that ExecStart's binary exists; only the unit's
	// own complaints count.
	out, _ := exec.Command("systemd-analyze", "verify", "imsgate.service").CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.Contains(line, "/usr/local/bin/imsgate is not executable") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
}
