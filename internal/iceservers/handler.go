// Package iceservers serves GET /ice-servers: the STUN and TURN servers a
// browser should give its RTCPeerConnection, with TURN credentials of its
// own (the TURN REST API's time-limited ones) when it has a token.
package iceservers

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/imsgate/imsgate/internal/token"

	"go.uber.org/zap"
)

// Server is one RTCIceServer as the browser takes it.
type Server struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Answer is the body of a 200: iceServers goes straight into an
// RTCConfiguration (JsSIP's pcConfig, SIP.js's peerConnectionConfiguration);
// ttl says when to fetch again.
type Answer struct {
	ICEServers []Server `json:"iceServers"`
	TTL        int      `json:"ttl,omitempty"`
}

// Config says what the gateway serves.
type Config struct {
	// STUN are stun: URLs; TURN are turn:/turns: URLs.
	STUN, TURN []string
	// Subject names who asks, from the request's token; nil when the
	// gateway has no tokens (passthrough): then no TURN credentials are
	// handed out, since nothing says who would be relaying.
	Subject func(r *http.Request) (subject string, expires time.Time, err error)
	// Credentials makes a TURN username and password for a subject,
	// valid for ttl from now.
	Credentials func(subject string, now time.Time, ttl time.Duration) (username, password string)
	// TTL is how long the credentials last at most: never past the
	// token's own expiry.
	TTL time.Duration
	// Origins may read the answer from another page (CORS); empty lets any.
	Origins []string
}

// Handler answers GET (and the CORS preflight of) /ice-servers.
func Handler(cfg Config, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowOrigin(w, r, cfg.Origins) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ans := Answer{}
		if len(cfg.STUN) > 0 {
			ans.ICEServers = append(ans.ICEServers, Server{URLs: cfg.STUN})
		}
		if len(cfg.TURN) > 0 && cfg.Subject != nil && cfg.Credentials != nil {
			subject, expires, err := cfg.Subject(r)
			if err != nil {
				refuse(w, r, err, log)
				return
			}
			now := time.Now()
			ttl := cfg.TTL
			if !expires.IsZero() && expires.Sub(now) < ttl {
				ttl = expires.Sub(now)
			}
			ttl = ttl.Truncate(time.Second)
			user, pass := cfg.Credentials(subject, now, ttl)
			ans.ICEServers = append(ans.ICEServers, Server{URLs: cfg.TURN, Username: user, Credential: pass})
			ans.TTL = int(ttl / time.Second)
			log.Debug("turn credentials issued", zap.String("subject", subject), zap.String("remote_addr", r.RemoteAddr))
		}
		if ans.ICEServers == nil {
			ans.ICEServers = []Server{}
		}
		// Credentials are per person and short-lived: never cached.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	})
}

// allowOrigin sets the CORS headers of a cross-origin request and tells
// whether its origin may read the answer.
func allowOrigin(w http.ResponseWriter, r *http.Request, origins []string) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if len(origins) > 0 && !slices.Contains(origins, o) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", o)
	w.Header().Add("Vary", "Origin")
	return true
}

// refuse answers a request whose token does not do, as the WebSocket
// upgrade does: the error's status and Bearer challenge.
func refuse(w http.ResponseWriter, r *http.Request, err error, log *zap.Logger) {
	status := token.WriteRefusal(w, err)
	log.Info("ice servers refused", zap.String("remote_addr", r.RemoteAddr), zap.Int("status", status), zap.Error(err))
}
