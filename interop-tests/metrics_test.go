//go:build interop

package interop

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imsgate/imsgate/internal/metrics/metricstest"
)

const (
	adminAddr  = "127.0.0.1:9460"
	adminToken = "interop-admin-token"
)

// TestMetricsAfterCalls: JsSIP in Chromium makes a call to the SIPp echo
// through Kamailio, with two digits as INFO and two as RFC 4733, hangs up,
// then calls a user Kamailio does not know (404). The gateway's /metrics
// (admin.listen, with its bearer token) then shows the calls started, one
// ended by the browser's hangup, one rejected 404 by the core and the
// INVITEs Kamailio challenged (407, answered by JsSIP with new ones), their
// setup time and post-dial delay, the digits by form, the upgrades and the
// media path, the SIP messages of each leg by method and status, and the
// answered call's MOS on each leg; without the token it answers 401; and
// Prometheus's own promtool check metrics passes on what it served.
func TestMetricsAfterCalls(t *testing.T) {
	if !onPath("promtool") {
		t.Fatal("promtool is not installed (bash .ci/run installs Debian's prometheus)")
	}
	e := newEnvWith(t, "udp", "admin:\n  listen: "+adminAddr+"\n  token: "+adminToken+"\n")

	r := startBrowser(t, e.browserOptions("jssip", "jssip.html", "call-out-dtmf", "alice", "sip:echo@imsgate.test")).waitResult(t, browserBudget)
	e.requireOK(t, r, "confirmed", "ended")
	e.requireBrowserAudio(t, r)
	r = startBrowser(t, e.browserOptions("jssip", "jssip.html", "call-out-rejected", "alice", "sip:nobody@imsgate.test")).waitResult(t, browserBudget)
	e.requireOK(t, r, "failed")

	if code, _ := scrape(t, ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	code, body := scrape(t, adminToken)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	file := filepath.Join(artifactDir(t), "metrics.txt")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	families, err := metricstest.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"imsgate_calls_started_total", map[string]string{"origin": "web"}, 2},
		{"imsgate_calls_ended_total", map[string]string{"reason": "hangup", "by": "web"}, 1},
		{"imsgate_calls_ended_total", map[string]string{"reason": "rejected", "by": "core", "status": "404"}, 1},
		// Kamailio challenges each INVITE; JsSIP answers with a new one.
		{"imsgate_calls_ended_total", map[string]string{"reason": "challenged", "by": "core", "status": "407"}, 2},
		{"imsgate_call_setup_seconds", nil, 1},
		{"imsgate_call_post_dial_delay_seconds", nil, 1},
		{"imsgate_dtmf_digits_total", map[string]string{"direction": "web_to_core", "arrived": "info"}, 2},
		{"imsgate_dtmf_digits_total", map[string]string{"direction": "web_to_core", "arrived": "rfc4733"}, 2},
		{"imsgate_ws_upgrades_total", nil, 2},
		{"imsgate_call_media_paths_total", map[string]string{"path": "udp"}, 1},
		// Both legs' SIP, counted on the wire: the browser's INVITEs (the
		// first challenged), Kamailio's 407s and 404.
		{"imsgate_sip_messages_total", map[string]string{"leg": "web", "direction": "in", "method": "INVITE", "status": "none"}, 3},
		{"imsgate_sip_messages_total", map[string]string{"leg": "core", "direction": "in", "method": "INVITE", "status": "407"}, 2},
		{"imsgate_sip_messages_total", map[string]string{"leg": "core", "direction": "in", "method": "INVITE", "status": "404"}, 1},
		{"imsgate_sip_messages_total", map[string]string{"leg": "web", "direction": "out", "method": "INVITE", "status": "404"}, 1},
		// The answered call's quality, each leg.
		{"imsgate_call_mos", map[string]string{"leg": "web"}, 1},
		{"imsgate_call_mos", map[string]string{"leg": "core"}, 1},
		{"imsgate_media_packets_total", map[string]string{"direction": "core_to_web"}, 50},
		{"process_cpu_seconds_total", nil, 0.01},
	} {
		got, ok := families.Sum(w.name, w.labels)
		t.Logf("%s%v = %v", w.name, w.labels, got)
		if !ok || got < w.min {
			e.failf(t, r, "%s%v = %v (present: %v), want at least %v", w.name, w.labels, got, ok, w.min)
		}
	}
	if got, _ := families.Sum("imsgate_calls_active", nil); got != 0 {
		e.failf(t, r, "imsgate_calls_active = %v with no call up", got)
	}

	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	out, err := check.CombinedOutput()
	t.Logf("promtool check metrics (%d bytes, %d families): %v %s", len(body), len(families), err, strings.TrimSpace(string(out)))
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// scrape GETs the gateway's /metrics with the bearer token ("" for none).
func scrape(t *testing.T, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}
