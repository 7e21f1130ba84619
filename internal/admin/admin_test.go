package admin

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "imsgate_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	var notReady error
	h := Handler(Config{Token: "s3cret", Gatherer: reg, Ready: func() error { return notReady }})
	tests := []struct {
		name, path, auth string
		notReady         error
		code             int
		body             string
	}{
		{"metrics with the token", "/metrics", "Bearer s3cret", nil, 200, "imsgate_test_total 3"},
		{"metrics without", "/metrics", "", nil, 401, "bearer token"},
		{"metrics with another", "/metrics", "Bearer s3cre", nil, 401, ""},
		{"metrics, basic auth", "/metrics", "Basic czNjcmV0", nil, 401, ""},
		{"healthz needs no token", "/healthz", "", nil, 200, "ok"},
		{"ready", "/readyz", "", nil, 200, "ready"},
		{"draining", "/readyz", "", errors.New("draining"), 503, "not ready: draining"},
		{"unknown path", "/nope", "", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notReady = tt.notReady
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Result().Body)
			if rec.Code != tt.code || !strings.Contains(string(body), tt.body) {
				t.Errorf("GET %s: %d %q, want %d with %q", tt.path, rec.Code, body, tt.code, tt.body)
			}
			if tt.code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
		})
	}
	// Without a token /metrics is open.
	rec := httptest.NewRecorder()
	Handler(Config{Gatherer: reg}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Errorf("open /metrics: %d", rec.Code)
	}
}
