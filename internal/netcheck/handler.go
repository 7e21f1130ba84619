// Package netcheck serves /netcheck/: a page that shows a person which
// network paths their browser's media can take to the gateway (UDP
// straight, ICE-TCP, TURN over UDP, TCP and TLS, what STUN sees) and which
// one a call would use, and the probes it runs for that. A probe is the
// page's RTCPeerConnection offer answered by a mediabridge probe that
// names only the candidates of the path tried (WHIP-like, RFC 9725: POST
// the offer, 201 with the answer and a Location to DELETE when done).
// It knows nothing of SIP.
package netcheck

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/imsgate/imsgate/internal/hostkey"
	"github.com/imsgate/imsgate/internal/pageassets"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// Defaults of Config.
const (
	DefaultMaxProbes = 32
	DefaultMaxPerIP  = 4
	DefaultMaxAge    = 20 * time.Second
)

const (
	// maxOfferBytes bounds an offer's body: a browser's audio offer with
	// every candidate is 2-6 KiB.
	maxOfferBytes = 16 << 10
	// offerReadTimeout bounds how long an offer's body may take to arrive.
	offerReadTimeout = 5 * time.Second
)

// pageCSP lets the page run its own script and style only, and fetch and
// probe this origin.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"

//go:embed static/index.html static/netcheck.js
var staticFiles embed.FS

// Prober makes the gateway's side of a probe: *mediabridge.Engine.
type Prober interface {
	NewProbe(log *zap.Logger, offer []byte, cfg mediabridge.ProbeConfig) (*mediabridge.Probe, []byte, error)
}

// Config bounds the probes; zero values take the defaults.
type Config struct {
	// MaxProbes is how many probes may run at once in all; MaxPerIP from
	// one source address. Past either the answer is 429.
	MaxProbes, MaxPerIP int
	// MaxAge ends a probe the page did not end.
	MaxAge time.Duration
	// Origins may post probes from other pages (ws.origins); a page of the
	// gateway's own host always may.
	Origins []string
}

// server is the handler and the probes it runs.
type server struct {
	media       Prober
	cfg         Config
	log         *zap.Logger
	readTimeout time.Duration // offerReadTimeout; shorter in tests

	mu     sync.Mutex
	probes map[string]*entry // by id; at most cfg.MaxProbes
	perIP  map[netip.Addr]int
}

// entry is one probe, from the slot taken until its end.
type entry struct {
	probe *mediabridge.Probe // nil while it is being made
}

// Handler serves, under /netcheck/: the page (GET /netcheck/), its script,
// POST /netcheck/probe?path=udp|tcp|any with an SDP offer, and DELETE
// /netcheck/probe/{id}. Mount it at "/netcheck/".
func Handler(media Prober, cfg Config, log *zap.Logger) http.Handler {
	_, h := newHandler(media, cfg, log)
	return h
}

func newHandler(media Prober, cfg Config, log *zap.Logger) (*server, http.Handler) {
	if cfg.MaxProbes <= 0 {
		cfg.MaxProbes = DefaultMaxProbes
	}
	if cfg.MaxPerIP <= 0 {
		cfg.MaxPerIP = DefaultMaxPerIP
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	s := &server{media: media, cfg: cfg, log: log, readTimeout: offerReadTimeout, probes: map[string]*entry{}, perIP: map[netip.Addr]int{}}
	mux := http.NewServeMux()
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		// Cannot happen: "static" is embedded above.
		log.Error("netcheck page missing", zap.Error(err))
		return s, http.NotFoundHandler()
	}
	mux.HandleFunc("GET /netcheck/{$}", pageassets.Embedded(static, "index.html", pageCSP))
	mux.HandleFunc("GET /netcheck/netcheck.js", pageassets.Embedded(static, "netcheck.js", pageCSP))
	mux.HandleFunc("POST /netcheck/probe", s.newProbe)
	mux.HandleFunc("DELETE /netcheck/probe/{id}", s.endProbe)
	return s, mux
}

// paths are the probe's ?path= values: the candidates the answer names.
var paths = map[string][]mediabridge.Transport{
	"udp": {mediabridge.TransportUDP},
	"tcp": {mediabridge.TransportTCP},
	"any": nil, // every candidate, as a call's answer
}

// newProbe answers POST /netcheck/probe.
func (s *server) newProbe(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		s.refuse(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	path := r.URL.Query().Get("path")
	transports, ok := paths[path]
	if !ok {
		s.refuse(w, r, http.StatusBadRequest, "path must be udp, tcp or any")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		s.refuse(w, r, http.StatusUnsupportedMediaType, "the offer must be application/sdp")
		return
	}
	if r.ContentLength > maxOfferBytes {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, "offer over "+strconv.Itoa(maxOfferBytes)+" bytes")
		return
	}
	// A body that comes slowly or runs long costs at most this, and holds
	// no probe slot meanwhile.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.readTimeout))
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, "offer over "+strconv.Itoa(maxOfferBytes)+" bytes")
		} else {
			s.refuse(w, r, http.StatusBadRequest, "offer not read: "+err.Error())
		}
		return
	}
	ip := sourceIP(r)
	id, reason := s.reserve(ip)
	if id == "" {
		w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.MaxAge+time.Second-1)/time.Second)))
		s.refuse(w, r, http.StatusTooManyRequests, reason)
		return
	}
	log := s.log.With(zap.String("probe", id[:8]), zap.String("path", path), zap.String("remote_addr", r.RemoteAddr))
	started := time.Now()
	p, answer, err := s.media.NewProbe(log, offer, mediabridge.ProbeConfig{
		Transports: transports,
		MaxAge:     s.cfg.MaxAge,
		OnEnd: func(res mediabridge.ProbeResult) {
			s.release(id, ip)
			log.Debug("netcheck probe ended", zap.Bool("connected", res.Connected), zap.Stringer("transport", res.Transport),
				zap.Stringer("browser_addr", res.Remote), zap.Duration("setup", res.Setup), zap.Duration("dur", res.Age),
				zap.Stringer("reason", res.End))
		},
	})
	if err != nil {
		s.release(id, ip)
		switch {
		case errors.Is(err, mediabridge.ErrBadSDP), errors.Is(err, mediabridge.ErrNoCommonCodec):
			s.refuse(w, r, http.StatusBadRequest, err.Error())
		case errors.Is(err, mediabridge.ErrNoICETCP):
			s.refuse(w, r, http.StatusNotImplemented, "this gateway has no ICE-TCP port (media.webrtc_tcp_port or edge.listen)")
		default:
			log.Error("netcheck probe not made", zap.Error(err))
			http.Error(w, "probe not made", http.StatusServiceUnavailable)
		}
		return
	}
	s.mu.Lock()
	if e := s.probes[id]; e != nil {
		e.probe = p
	} // else it has ended already (the engine closed)
	s.mu.Unlock()
	log.Debug("netcheck probe started", zap.Duration("dur", time.Since(started)))
	h := w.Header()
	h.Set("Location", (&url.URL{Path: r.URL.Path + "/" + id}).EscapedPath())
	h.Set("Content-Type", "application/sdp")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(answer)
}

// endProbe answers DELETE /netcheck/probe/{id}: the page is done with it.
func (s *server) endProbe(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		s.refuse(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	s.mu.Lock()
	e := s.probes[r.PathValue("id")]
	var p *mediabridge.Probe
	if e != nil {
		p = e.probe
	}
	s.mu.Unlock()
	if p == nil {
		s.refuse(w, r, http.StatusNotFound, "no such probe (it has ended)")
		return
	}
	p.Close() // its OnEnd releases the slot
	w.WriteHeader(http.StatusNoContent)
}

// reserve takes a slot for a probe from ip and names it; "" and why when
// none is free.
func (s *server) reserve(ip netip.Addr) (id, reason string) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.probes) >= s.cfg.MaxProbes:
		return "", "too many checks running on this gateway; try again in a few seconds"
	case s.perIP[ip] >= s.cfg.MaxPerIP:
		return "", "too many checks running from your address; try again in a few seconds"
	}
	id = hex.EncodeToString(b[:])
	s.probes[id] = &entry{}
	s.perIP[ip]++
	return id, ""
}

// release frees a probe's slot; a second call does nothing.
func (s *server) release(id string, ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.probes[id]; !ok {
		return
	}
	delete(s.probes, id)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// originAllowed: no Origin (not a browser page), the gateway's own host,
// or one of cfg.Origins. A probe's offer is application/sdp, which no
// cross-origin page may send without a preflight this handler never
// grants; the check also covers DELETE.
func (s *server) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || slices.Contains(s.cfg.Origins, o) {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// refuse answers a request that does not do with status and why, which
// the page shows; at debug level, since visitors choose them.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, status int, reason string) {
	s.log.Debug("netcheck request refused", zap.String("remote_addr", r.RemoteAddr), zap.Int("status", status), zap.String("reason", reason))
	http.Error(w, reason, status)
}

// sourceIP is the request's source as the per-address limit counts it:
// the host's range (an IPv4 address, an IPv6 /64).
func sourceIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return hostkey.Of(ap.Addr()).Addr()
}
