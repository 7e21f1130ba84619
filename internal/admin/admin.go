// Package admin is the operator's HTTP listener (admin.listen): Prometheus
// metrics behind an optional bearer token, and the health endpoints that
// probes and load balancers ask without one.
package admin

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is what the handler serves.
type Config struct {
	// Token, when not empty, is the bearer token /metrics asks for.
	Token string
	// Gatherer is what /metrics exposes.
	Gatherer prometheus.Gatherer
	// Ready says why the gateway should take no new traffic (draining,
	// no upstream answering), or nil when it may; nil Ready is always
	// ready.
	Ready func() error
	// API, when set, serves /api/ (the call timelines, the status page's
	// figures) behind the token.
	API http.Handler
	// Page, when set, serves the rest (the status page), without the
	// token: it holds no data, and asks for the token to read the API.
	Page http.Handler
}

// Handler serves:
//
//	GET /metrics  the Prometheus text format (401 without the token, when set)
//	/api/...      Config.API (the call timelines), behind the token too
//	/...          Config.Page (the status page), open
//	GET /healthz  200 while the process serves at all
//	GET /readyz   200, or 503 with the reason Ready gives
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	mux.Handle("GET /metrics", bearer(cfg.Token, metrics))
	if cfg.API != nil {
		mux.Handle("/api/", bearer(cfg.Token, cfg.API))
	}
	if cfg.Page != nil {
		mux.Handle("/", cfg.Page)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		plain(w, http.StatusOK, "ready")
	})
	return mux
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}

// bearer lets a request through with "Authorization: Bearer <token>";
// an empty token lets every request through.
func bearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imsgate admin"`)
			plain(w, http.StatusUnauthorized, "a bearer token (admin.token) is needed")
			return
		}
		next.ServeHTTP(w, r)
	})
}
