package sipws

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/imsgate/imsgate/configs"
)

// TestLimitsOnByDefault: a Server built without WithLimits applies
// configs.DefaultLimits everywhere they reach.
func TestLimitsOnByDefault(t *testing.T) {
	srv, err := NewServer(testConfig(), newRecordingHandler(), zap.NewNop())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	def := configs.DefaultLimits()
	hs := srv.httpServer
	checks := []struct {
		name      string
		got, want any
	}{
		{"read header timeout", hs.ReadHeaderTimeout, def.UpgradeTimeout},
		{"idle timeout", hs.IdleTimeout, def.UpgradeTimeout},
		{"handshake timeout", srv.upgrader.HandshakeTimeout, def.UpgradeTimeout},
		{"max header bytes", hs.MaxHeaderBytes, def.MaxUpgradeBytes},
		{"conns per ip", srv.perIP.max, def.ConnsPerIP},
		{"upgrades per ip", srv.upgrades.perSecond, def.UpgradesPerIP},
		{"max headers", srv.frameLimits.maxHeaders, def.MaxHeaders},
		{"max sdp bytes", srv.frameLimits.maxSDPBytes, def.MaxSDPBytes},
		{"log window", srv.refusals.window, def.LogWindow},
		{"requests per conn", srv.limits.RequestsPerConn, def.RequestsPerConn},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	got := srv.Refusals()
	for _, kind := range []string{"conns_per_ip", "upgrade_rate", "upgrade_timeout", "admission", "request_rate",
		"request_rate_close", "too_many_headers", "sdp_too_large", "malformed"} {
		if n, ok := got[kind]; !ok || n != 0 {
			t.Errorf("Refusals()[%s] = %d, %v; want 0, present", kind, n, ok)
		}
	}
}

func TestWithLimitsRejectsNonPositive(t *testing.T) {
	tests := []struct {
		key    string
		mutate func(*configs.Limits)
	}{
		{"conns_per_ip", func(l *configs.Limits) { l.ConnsPerIP = 0 }},
		{"upgrades_per_ip", func(l *configs.Limits) { l.UpgradesPerIP = -1 }},
		{"upgrade_timeout", func(l *configs.Limits) { l.UpgradeTimeout = 0 }},
		{"requests_per_conn", func(l *configs.Limits) { l.RequestsPerConn = 0 }},
		{"max_headers", func(l *configs.Limits) { l.MaxHeaders = 0 }},
		{"log_window", func(l *configs.Limits) { l.LogWindow = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			l := configs.DefaultLimits()
			tt.mutate(&l)
			_, err := NewServer(testConfig(), newRecordingHandler(), zap.NewNop(), WithLimits(l))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("NewServer = %v, want an error naming %s", err, tt.key)
			}
		})
	}
}

func TestNewRateAndRetryAfter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		perSecond  float64
		wantBurst  int
		wantRetry  int
		wantPeriod time.Duration
	}{
		{perSecond: 20, wantBurst: 40, wantRetry: 1},
		{perSecond: 1, wantBurst: 2, wantRetry: 1},
		{perSecond: 0.5, wantBurst: 1, wantRetry: 2},
		{perSecond: 0.1, wantBurst: 1, wantRetry: 10},
	}
	for _, tt := range tests {
		lim := newRate(tt.perSecond)
		if lim.Burst() != tt.wantBurst || lim.Limit() != rate.Limit(tt.perSecond) {
			t.Errorf("newRate(%g): %g per second, burst %d; want burst %d", tt.perSecond, lim.Limit(), lim.Burst(), tt.wantBurst)
		}
		for lim.AllowN(t0, 1) {
		}
		if got := retryAfter(lim, t0); got != tt.wantRetry {
			t.Errorf("retryAfter at %g per second = %d, want %d", tt.perSecond, got, tt.wantRetry)
		}
	}
}
