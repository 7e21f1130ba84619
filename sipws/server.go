package sipws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/certs"
	"github.com/imsgate/imsgate/internal/siptap"
)

const (
	// sendQueueSize bounds what one slow browser can make us hold.
	sendQueueSize = 128
	// inboxLimit bounds the frames read but not yet handled; past it the
	// reader waits.
	inboxLimit = 64
	// writeWait bounds every write, so a stuck peer cannot hold the writer.
	writeWait = 10 * time.Second
	// closeGrace is how long we wait for the peer's close frame after sending ours.
	closeGrace = time.Second
	// subprotocol is the WebSocket subprotocol of RFC 7118 section 4.
	subprotocol = "sip"
)

// Handler receives what arrives on SIP-over-WebSocket connections.
type Handler interface {
	// HandleMessage is called for every parsed SIP message of a
	// connection, in order and one at a time (on the connection's handler
	// goroutine). It must not block for long: the connection's next frames
	// wait for it.
	HandleMessage(c *Conn, msg sip.Message)
	// ConnClosed is called once, after the connection is closed and removed
	// from the registry.
	ConnClosed(c *Conn)
}

// Option changes a Server built by NewServer.
type Option func(*Server)

// WithHTTPHandler serves requests that are not WebSocket upgrades (the demo
// web page). Without it they get 404.
func WithHTTPHandler(h http.Handler) Option {
	return func(s *Server) { s.httpHandler = h }
}

// WithTap shows every SIP message of the connections, received and sent, to
// tap (the per-leg counters, HEP, the call timelines).
func WithTap(t *siptap.Tap) Option {
	return func(s *Server) { s.tap = t }
}

// Server accepts SIP-over-WebSocket connections and keeps a registry of them
// by flow token.
type Server struct {
	tap         *siptap.Tap // nil: nothing is tapped
	cfg         configs.WS
	handler     Handler
	log         *zap.Logger
	httpHandler http.Handler
	httpServer  *http.Server
	tlsPolicy   configs.TLS
	tls         *tls.Config  // for ServeTLS; nil without a certificate
	certs       *certs.Store // what tls hands out; reloadable
	upgrader    websocket.Upgrader
	parser      *sip.Parser
	origins     map[string]bool // normalized allowlist; empty allows all
	admission   Admission       // nil: no check beyond origin and subprotocol

	limits      configs.Limits
	frameLimits frameLimits
	now         func() time.Time // the limiters' clock
	refusals    *refusalLog
	perIP       *ipConns      // TCP connections per source IP
	upgrades    *upgradeRates // upgrade rate per source IP

	draining atomic.Bool
	upgraded atomic.Uint64 // upgrades accepted (Upgrades)

	mu     sync.RWMutex
	conns  map[string]*Conn
	closed bool           // set by Shutdown; no new conns after it
	wg     sync.WaitGroup // one per accepted conn, from before upgrade to ConnClosed

	idleOnce sync.Once
	idle     *idleWatcher // started by the first parking connection; nil where unavailable
}

// idleWatcher returns the watcher of parked connections, starting it the
// first time; nil when the platform has none (connections then keep their
// reader) or after Shutdown.
func (s *Server) idleWatcher() *idleWatcher {
	s.idleOnce.Do(func() {
		w, err := newIdleWatcher()
		if err != nil {
			s.log.Info("idle ws connections keep a reader goroutine", zap.Error(err))
			return
		}
		s.idle = w
	})
	return s.idle
}

// NewServer builds a Server for the ws config section. Serve takes plain
// WS listeners; ServeTLS takes WSS listeners and needs cfg.TLSCert and
// cfg.TLSKey.
func NewServer(cfg configs.WS, h Handler, log *zap.Logger, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, fmt.Errorf("new ws server: %w", errNilHandler)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.MaxMessageBytes <= 0 || cfg.PingInterval <= 0 || cfg.IdleTimeout <= 0 {
		return nil, fmt.Errorf("new ws server: %w: max_message_bytes, ping_interval and idle_timeout must be positive", errBadConfig)
	}
	s := &Server{
		cfg:         cfg,
		handler:     h,
		log:         log,
		httpHandler: http.NotFoundHandler(),
		conns:       make(map[string]*Conn),
		origins:     make(map[string]bool),
		tlsPolicy:   configs.Default().TLS,
		limits:      configs.DefaultLimits(),
		now:         time.Now,
	}
	for _, o := range cfg.Origins {
		n, ok := normalizeOrigin(o)
		if !ok {
			return nil, fmt.Errorf("new ws server: %w: origin %q", errBadConfig, o)
		}
		s.origins[n] = true
	}
	if len(s.origins) == 0 {
		log.Warn("ws origin allowlist is empty: every origin is allowed")
	}
	for _, opt := range opts {
		opt(s)
	}
	if err := s.limits.CheckPositive(); err != nil {
		return nil, fmt.Errorf("new ws server: %w", err)
	}
	s.frameLimits = frameLimits{maxHeaders: s.limits.MaxHeaders, maxSDPBytes: s.limits.MaxSDPBytes}
	s.refusals = newRefusalLog(s.limits.LogWindow)
	s.perIP = newIPConns(s.limits.ConnsPerIP)
	s.upgrades = newUpgradeRates(s.limits.UpgradesPerIP)
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		var err error
		if s.tls, err = s.tlsConfig(); err != nil {
			return nil, fmt.Errorf("new ws server: %w", err)
		}
	}
	s.parser = sip.NewParser()
	// The frame size is already bounded by SetReadLimit; let the parser
	// accept whatever the config allows.
	s.parser.MaxMessageLength = cfg.MaxMessageBytes
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: s.limits.UpgradeTimeout,
		// Zero: gorilla reads through the hijacked reader, which
		// hijackWriter makes readBufferSize bytes.
		ReadBufferSize:  0,
		WriteBufferSize: 4096,
		// Idle clients dominate; a pooled write buffer keeps them small.
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{subprotocol},
		// permessage-deflate is never negotiated: Safari closes with 1006
		// when it is, and SIP messages are small.
		EnableCompression: false,
		// Origin is checked in ServeHTTP before Upgrade, with a text body.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	s.httpServer = &http.Server{
		Handler: s,
		// Slowloris: the request, headers and all, within upgrade_timeout
		// (after the TLS handshake, bounded alike); a connection served
		// (the web phone page) that stays silent as long is closed, so
		// connections that never upgrade cannot pile up.
		ReadHeaderTimeout: s.limits.UpgradeTimeout,
		IdleTimeout:       s.limits.UpgradeTimeout,
		// net/http reads up to 4 KiB beyond it before its own 431;
		// upgradeSizeAllowed holds an upgrade to the limit exactly.
		MaxHeaderBytes: s.limits.MaxUpgradeBytes,
		ConnState:      s.connState,
		ErrorLog:       httpErrorLog(log),
	}
	return s, nil
}

// Serve accepts plain HTTP and WS on l until Shutdown, then returns
// http.ErrServerClosed. It may run beside ServeTLS.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(s.limitListener(l), "serve ws")
}

// serve runs the one http.Server on l, which the caller has wrapped with
// limitListener; net/http allows several listeners and Shutdown closes
// them all.
func (s *Server) serve(l net.Listener, op string) error {
	err := s.httpServer.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Drain refuses new upgrades with 503 from now on; open connections stay.
func (s *Server) Drain() {
	if !s.draining.Swap(true) {
		s.log.Info("ws draining: new connections refused", zap.Int("conns", s.Len()))
	}
}

// Shutdown stops serving, closes every connection with 1001 "going away"
// and waits until all of their goroutines are gone. When ctx ends first the
// sockets are cut without waiting for the peers' close frames, and ctx's
// error is returned once everything has stopped. Only a Handler that blocks
// in HandleMessage can hold Shutdown beyond that.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.Close(websocket.CloseGoingAway, "going away")
	}
	httpErr := s.httpServer.Shutdown(ctx)

	allDone := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-ctx.Done():
		s.mu.RLock()
		for _, c := range s.conns {
			c.abort()
		}
		s.mu.RUnlock()
		// Aborted conns end at once: their sockets are closed.
		<-allDone
		s.stopIdleWatcher()
		return fmt.Errorf("shutdown ws: %w", ctx.Err())
	}
	s.stopIdleWatcher()
	if httpErr != nil {
		return fmt.Errorf("shutdown ws: %w", httpErr)
	}
	return nil
}

// stopIdleWatcher ends the watcher once every connection is gone; none
// starts after it.
func (s *Server) stopIdleWatcher() {
	s.idleOnce.Do(func() {})
	if s.idle != nil {
		s.idle.close()
	}
}

// Lookup finds an open connection by its flow token.
func (s *Server) Lookup(flow string) (*Conn, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.conns[flow]
	return c, ok
}

// Len is the number of open connections.
func (s *Server) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// admit reserves a place for a new connection; it fails once Shutdown began.
// The WaitGroup is added under the lock so no Add races Shutdown's Wait.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) register(c *Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errShuttingDown
	}
	s.conns[c.flow] = c
	return nil
}

func (s *Server) unregister(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c.flow)
}

// normalizeOrigin reduces an origin to lower-case scheme://host[:port].
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// httpErrorLog sends net/http's own complaints (TLS handshakes, bad
// requests: peer faults) to zap at Warn.
func httpErrorLog(log *zap.Logger) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log.Named("http"), zap.WarnLevel)
	if err != nil {
		return zap.NewStdLog(log.Named("http"))
	}
	return l
}
