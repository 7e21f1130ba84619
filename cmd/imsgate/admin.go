package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/cmd/imsgate/statuspage"
	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/admin"
	"github.com/imsgate/imsgate/internal/cdr"
	"github.com/imsgate/imsgate/internal/history"
	"github.com/imsgate/imsgate/internal/metrics"
	"github.com/imsgate/imsgate/internal/timeline"
)

// startAdmin registers every part's metrics in reg and serves admin.listen:
// /metrics, /healthz, /readyz.
func (a *app) startAdmin(cfg configs.Admin, reg *prometheus.Registry) error {
	metrics.RegisterGateway(reg, a.gw)
	metrics.RegisterRequests(reg, a.gw.RequestStats)
	metrics.RegisterUpstreams(reg, a.gw.Upstreams)
	metrics.RegisterWebSockets(reg, a.ws)
	if a.turn != nil {
		metrics.RegisterTURN(reg, a.turn.Stats)
	}
	if a.stun != nil {
		metrics.RegisterSTUN(reg, a.stun.Stats)
	}
	if a.edge != nil {
		metrics.RegisterEdge(reg, a.edge.Counts)
	}
	if a.cdr != nil {
		metrics.RegisterCDR(reg, a.cdr.Stats)
	}
	if cfg.Listen == configs.AdminOff {
		return nil
	}
	token, err := cfg.BearerToken()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	a.adminLn = ln
	a.admin = &http.Server{
		Handler: admin.Handler(admin.Config{Token: token, Gatherer: reg, Ready: a.ready, API: a.adminAPI(),
			Page: statuspage.Handler(cfg.StatusLibDir, a.log.Named("status"))}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = a.admin.Serve(ln)
	}()
	fields := []zap.Field{zap.String("listen", ln.Addr().String()), zap.Bool("token", token != "")}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) && token == "" {
		a.log.Warn("admin listener beyond loopback without admin.token: anyone who reaches it reads the metrics", fields...)
	} else {
		a.log.Info("admin listener: / (status page), /api/, /metrics, /healthz, /readyz", append(fields, zap.String("status_page", "http://"+ln.Addr().String()+"/"))...)
	}
	return nil
}

// adminAPI is /api/: the calls' timelines and the status page's figures.
func (a *app) adminAPI() http.Handler {
	mux := http.NewServeMux()
	calls := timeline.Handler(a.timeline)
	mux.Handle("/api/calls", calls)
	mux.Handle("/api/calls/", calls)
	mux.Handle("/api/stats", history.Handler(a.history, a.liveStats))
	return mux
}

// liveStats is the status page's figures of now.
func (a *app) liveStats() any {
	type upstream struct {
		URI     string `json:"uri"`
		Up      bool   `json:"up"`
		Current bool   `json:"current"`
	}
	now := struct {
		CallsActive   int        `json:"calls_active"`
		Registrations int        `json:"registrations"`
		WSConnections int        `json:"ws_connections"`
		Upstreams     []upstream `json:"upstreams"`
		Ready         bool       `json:"ready"`
		NotReady      string     `json:"not_ready,omitempty"`
	}{CallsActive: a.gw.Calls(), Registrations: a.gw.Bindings(), WSConnections: a.ws.Len(), Ready: true}
	for _, u := range a.gw.Upstreams() {
		now.Upstreams = append(now.Upstreams, upstream{URI: u.URI, Up: u.Up, Current: u.Current})
	}
	if err := a.ready(); err != nil {
		now.Ready, now.NotReady = false, err.Error()
	}
	return now
}

// cdrConfig is the cdr section as internal/cdr takes it.
func cdrConfig(c configs.CDR) (cdr.Config, error) {
	token, err := c.BearerToken()
	return cdr.Config{File: c.File, RotateBytes: c.RotateBytes, RotateEvery: c.RotateEvery, Webhook: c.Webhook,
		WebhookToken: token, SpoolDir: c.SpoolDir, SpoolMax: c.SpoolMax}, err
}

// ready is /readyz: not while draining, nor while no upstream answers.
func (a *app) ready() error {
	if a.draining.Load() {
		return errors.New("draining")
	}
	return a.gw.UpstreamReady()
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
