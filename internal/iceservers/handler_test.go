package iceservers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
)

type statusErr struct{}

func (statusErr) Error() string     { return "token expired" }
func (statusErr) Status() int       { return http.StatusUnauthorized }
func (statusErr) Challenge() string { return `Bearer error="invalid_token"` }

func TestHandler(t *testing.T) {
	cfg := Config{
		STUN: []string{"stun:gw.example:3478"},
		TURN: []string{"turn:gw.example:3478?transport=udp", "turns:gw.example:5349?transport=tcp"},
		Subject: func(r *http.Request) (string, time.Time, error) {
			switch r.Header.Get("Authorization") {
			case "Bearer good":
				return "alice", time.Time{}, nil
			case "Bearer short":
				return "alice", time.Now().Add(90 * time.Second), nil
			}
			return "", time.Time{}, statusErr{}
		},
		Credentials: func(subject string, now time.Time, ttl time.Duration) (string, string) {
			return "123:" + subject, ttl.String()
		},
		TTL:     time.Hour,
		Origins: []string{"https://app.example"},
	}
	h := Handler(cfg, zap.NewNop())
	for _, tc := range []struct {
		name, auth, origin string
		status, servers    int
		user               string
	}{
		{"token", "Bearer good", "", 200, 2, "123:alice"},
		{"allowed origin", "Bearer good", "https://app.example", 200, 2, "123:alice"},
		{"other origin", "Bearer good", "https://evil.example", 403, 0, ""},
		{"bad token", "Bearer bad", "", 401, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ice-servers", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a Bearer challenge")
			}
			if tc.status != 200 {
				return
			}
			var ans Answer
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
				t.Fatal(err)
			}
			if len(ans.ICEServers) != tc.servers || ans.ICEServers[1].Username != tc.user || ans.TTL != 3600 {
				t.Fatalf("answer %+v", ans)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("credentials may be cached")
			}
			if tc.origin != "" && w.Header().Get("Access-Control-Allow-Origin") != tc.origin {
				t.Fatal("no CORS header for an allowed origin")
			}
		})
	}
	t.Run("credentials end with the token", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/ice-servers", nil)
		r.Header.Set("Authorization", "Bearer short")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var ans Answer
		if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.TTL < 85 || ans.TTL > 90 || ans.ICEServers[1].Credential != time.Duration(ans.TTL*int(time.Second)).String() {
			t.Fatalf("answer %s (%v), want credentials for the token's remaining 90 s", w.Body, err)
		}
	})
	t.Run("passthrough: stun only", func(t *testing.T) {
		cfg := cfg
		cfg.Subject = nil
		w := httptest.NewRecorder()
		Handler(cfg, zap.NewNop()).ServeHTTP(w, httptest.NewRequest("GET", "/ice-servers", nil))
		var ans Answer
		if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || len(ans.ICEServers) != 1 || ans.ICEServers[0].Username != "" {
			t.Fatalf("answer %s (%v), want the STUN server alone", w.Body, err)
		}
	})
	t.Run("preflight", func(t *testing.T) {
		r := httptest.NewRequest("OPTIONS", "/ice-servers", nil)
		r.Header.Set("Origin", "https://app.example")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 204 || w.Header().Get("Access-Control-Allow-Headers") != "Authorization" {
			t.Fatalf("preflight %d %v", w.Code, w.Header())
		}
	})
}
