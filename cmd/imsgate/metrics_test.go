package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imsgate/imsgate/internal/metrics/metricstest"
)

// TestLoopbackMetrics: a browser registers, makes an answered call with
// two digits and a call the core rejects 486; /metrics on admin.listen
// then shows them (calls started and ended by reason and status, setup
// and post-dial delay observed, a registration, an upgrade, digits by
// form), passes the linter promtool uses, and /healthz and /readyz
// answer, /readyz 503 once the gateway drains.
func TestLoopbackMetrics(t *testing.T) {
	noLeaks(t)
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answeredThenRefused(t, ctx, r.browser(ctx, "alice"), "5", "#")
	want := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"imsgate_calls_started_total", map[string]string{"origin": "web"}, 2},
		{"imsgate_calls_ended_total", map[string]string{"reason": "hangup", "by": "web", "status": "none"}, 1},
		{"imsgate_calls_ended_total", map[string]string{"reason": "rejected", "by": "core", "status": "486"}, 1},
		{"imsgate_call_setup_seconds", nil, 1},
		{"imsgate_call_post_dial_delay_seconds", nil, 1},
		{"imsgate_registrations_active", nil, 1},
		{"imsgate_ws_connections_active", nil, 1},
		{"imsgate_ws_upgrades_total", nil, 1},
		{"imsgate_dtmf_digits_total", map[string]string{"direction": "web_to_core"}, 2},
		{"imsgate_call_media_paths_total", map[string]string{"path": "udp"}, 1},
		{"imsgate_dtls_handshake_seconds", map[string]string{"transport": "udp"}, 1},
		{"imsgate_webrtc_setup_seconds", map[string]string{"transport": "udp"}, 1},
		{"imsgate_media_packets_total", map[string]string{"direction": "web_to_core"}, 10},
		{"imsgate_media_packets_total", map[string]string{"direction": "core_to_web"}, 10},
		{"imsgate_call_mos", map[string]string{"leg": "web"}, 1},
		{"imsgate_call_mos", map[string]string{"leg": "core"}, 1},
		{"imsgate_call_jitter_seconds", map[string]string{"leg": "core"}, 1},
		{"imsgate_sip_messages_total", map[string]string{"leg": "web", "direction": "in", "method": "INVITE", "status": "none"}, 2},
		{"imsgate_sip_messages_total", map[string]string{"leg": "web", "direction": "out", "method": "INVITE", "status": "486"}, 1},
		{"imsgate_sip_messages_total", map[string]string{"leg": "core", "direction": "out", "method": "INVITE", "status": "none"}, 2},
		{"imsgate_sip_messages_total", map[string]string{"leg": "core", "direction": "in", "method": "INVITE", "status": "486"}, 1},
		{"imsgate_sip_messages_total", map[string]string{"leg": "core", "direction": "in", "method": "BYE", "status": "200"}, 1},
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	}
	base := "http://" + r.gw.AdminAddr()
	var families metricstest.Families
	missing := func() []string {
		var out []string
		for _, w := range want {
			if got, ok := families.Sum(w.name, w.labels); !ok || got < w.min {
				out = append(out, fmt.Sprintf("%s%v = %v (found %v), want at least %v", w.name, w.labels, got, ok, w.min))
			}
		}
		return out
	}
	// A call leaves the gateway's table before its end reaches the
	// observers, and a message is counted once it is on the wire (the
	// browser's 486 by its connection's writer, the core's 200 for the BYE
	// after the call ended): wait for them, a while.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		f, err := metricstest.Parse([]byte(get(t, base+"/metrics", http.StatusOK)))
		if err != nil {
			t.Fatal(err)
		}
		families = f
		if (r.gw.gw.Calls() == 0 && len(missing()) == 0) || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing() {
		t.Error(m)
	}
	// No call came from the core: an INVITE read on the core leg would be
	// the test's own core's, taken for the gateway's.
	if got, _ := families.Sum("imsgate_sip_messages_total", map[string]string{"leg": "core", "direction": "in", "method": "INVITE", "status": "none"}); got != 0 {
		t.Errorf("%v INVITEs counted in on the core leg, want none", got)
	}
	if got, _ := families.Sum("imsgate_calls_active", nil); got != 0 {
		t.Errorf("imsgate_calls_active = %v after both calls ended", got)
	}
	problems, err := testutil.GatherAndLint(r.gw.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	get(t, base+"/healthz", http.StatusOK)
	get(t, base+"/readyz", http.StatusOK)
	drained := make(chan struct{})
	go func() { r.gw.drain(ctx, 0); close(drained) }()
	<-drained
	if b := get(t, base+"/readyz", http.StatusServiceUnavailable); !strings.Contains(b, "draining") {
		t.Errorf("/readyz while draining: %q", b)
	}
	get(t, base+"/healthz", http.StatusOK)
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("GET %s: %d %q, want %d", url, res.StatusCode, b, want)
	}
	return string(b)
}
