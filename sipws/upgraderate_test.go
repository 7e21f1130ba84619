package sipws

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestUpgradeRatePerIP: past upgrades_per_ip and its burst an upgrade gets
// 429 with Retry-After; a refilled bucket lets it in; plain HTTP requests
// take nothing from it.
func TestUpgradeRatePerIP(t *testing.T) {
	clock := newFakeClock()
	lim := roomyLimits()
	lim.UpgradesPerIP = 1 // burst 2
	ts := startServer(t, testConfig(), WithLimits(lim), withClock(clock.now))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range 3 {
		resp, err := client.Get("http" + strings.TrimPrefix(ts.url, "ws") + "/page")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		_ = resp.Body.Close()
	}
	dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))

	ws, resp, err := websocket.DefaultDialer.Dial(ts.url, sipHeader(""))
	if err == nil {
		_ = ws.Close()
		t.Fatal("third upgrade accepted, want 429")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("response %v, %v: want 429", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if !strings.Contains(string(body), "too many") {
		t.Errorf("body = %q", body)
	}
	if n := ts.srv.Refusals()["upgrade_rate"]; n != 1 {
		t.Errorf("upgrade_rate refusals = %d, want 1", n)
	}

	clock.advance(time.Second)
	dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
}

// TestUpgradeRatesBounded: a flood of source addresses fills the table to
// its cap and no further, and entries silent for a refill are swept.
func TestUpgradeRatesBounded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	u := newUpgradeRates(20)
	for i := range upgradeSources + 100 {
		if ok, _ := u.allow(testAddr(i), t0); !ok {
			t.Fatalf("source %d refused its first upgrade", i)
		}
	}
	if n := len(u.bySource); n != upgradeSources {
		t.Errorf("table holds %d, want its cap %d", n, upgradeSources)
	}
	if ok, _ := u.allow(testAddr(0), t0.Add(u.refill)); !ok {
		t.Error("upgrade refused after a refill")
	}
	if n := len(u.bySource); n != 1 {
		t.Errorf("table holds %d after the sweep, want 1", n)
	}
}

func TestUpgradeRatesBurst(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	u := newUpgradeRates(20)
	ip := testAddr(1)
	for i := range 40 {
		if ok, _ := u.allow(ip, t0); !ok {
			t.Fatalf("upgrade %d refused within the burst of 40", i+1)
		}
	}
	if ok, retry := u.allow(ip, t0); ok || retry != 1 {
		t.Errorf("41st upgrade: allowed %v, Retry-After %d; want refused, 1", ok, retry)
	}
	if ok, _ := u.allow(ip, t0.Add(50*time.Millisecond)); !ok {
		t.Error("refused after one token's time")
	}
}
