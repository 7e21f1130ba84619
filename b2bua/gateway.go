// Package b2bua is imsgate's back-to-back user agent: browser REGISTERs and
// calls over WebSocket (the web leg) are re-originated as plain SIP toward the
// core (the core leg), and calls from the core reach the browser's flow. It is
// the only package that sees both legs and the media session.
package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/certs"
	"github.com/imsgate/imsgate/internal/tally"
	"github.com/imsgate/imsgate/mediabridge"
	"github.com/imsgate/imsgate/presence"
	"github.com/imsgate/imsgate/sipws"
)

// webFlow is what the gateway needs of a browser's WebSocket connection.
type webFlow interface {
	Flow() string
	WriteMessage(msg sip.Message) error
	Transport() string
	Done() <-chan struct{}
}

// mediaEngine makes one media session per call.
type mediaEngine interface {
	NewSession(log *zap.Logger) (*mediabridge.Session, error)
}

// flowLookup finds a browser's connection by its flow token.
type flowLookup func(flow string) (webFlow, bool)

// Gateway joins the WebSocket side, the core side and the media bridge.
type Gateway struct {
	cfg      configs.Config
	log      *zap.Logger
	core     *coreSide
	media    mediaEngine
	reg      *registrar
	unreg    *unregisterQueue
	observer Observer
	dtmf     tally.Counts // digits by the forms they came and left in
	// mediaPaths counts calls by their browser media's path; relays tells
	// the gateway's own TURN relays (media_path.go).
	mediaPaths tally.Counts
	relays     RelayLookup
	refused    refusalLog
	slots      callSlots
	nonCall    RequestHandler
	tokens     *tokenMode   // auth.mode token; nil in passthrough
	sipTLS     net.Listener // sip.tls_listen; nil without one

	flows atomic.Pointer[flowLookup]

	mu        sync.Mutex
	calls     map[string]*Call              // by webKey(flow, web-leg Call-ID)
	coreIDs   map[string]*Call              // by coreKey(core-leg Call-ID, our tag)
	flowCalls map[string]map[*Call]struct{} // by flow
	// parked are closed flows whose calls wait for the browser to
	// reconnect (reconnect.go); their bindings stay registered meanwhile.
	parked   map[string]struct{}
	draining bool
	// live counts call goroutines, including calls that ended and wait
	// for their far leg's INVITE to settle.
	live atomic.Int64

	webTxs webTxs
	// consentPeriod is RFC 7675's 30 s (shorter in tests).
	consentPeriod time.Duration

	wg     sync.WaitGroup // every goroutine the gateway starts
	ctx    context.Context
	cancel context.CancelFunc
}

// Option changes a Gateway built by New.
type Option func(*Gateway)

// WithObserver sends every call's state changes and end to o, after the
// observers given before it.
func WithObserver(o Observer) Option {
	return func(g *Gateway) {
		if all, ok := g.observer.(observers); ok {
			g.observer = append(all, o)
		} else if _, none := g.observer.(nopObserver); none {
			g.observer = observers{o}
		} else {
			g.observer = observers{g.observer, o}
		}
	}
}

// WithSIPTLS serves SIP over TLS toward the core on ln (sip.tls_listen,
// a TLS listener).
func WithSIPTLS(ln net.Listener) Option { return func(g *Gateway) { g.sipTLS = ln } }

// WithRequestHandler hands requests that are not part of a call (MESSAGE,
// SUBSCRIBE, NOTIFY, PUBLISH, OPTIONS) to h.
func WithRequestHandler(h RequestHandler) Option { return func(g *Gateway) { g.nonCall = h } }

// New makes a gateway and starts serving SIP toward the core. sipConn and
// sipLn are the bound UDP socket and TCP listener (taken as arguments so
// tests use 127.0.0.1:0).
func New(cfg configs.Config, media mediaEngine, sipConn net.PacketConn, sipLn net.Listener, log *zap.Logger, opts ...Option) (*Gateway, error) {
	// sipgo logs through slog; its lines land in the same zap core.
	slogger := slog.New(zapslog.NewHandler(log.Named("sip").Core()))
	clientTLS, err := certs.ClientConfig(cfg.TLS, cfg.Upstream.TLSCA)
	if err != nil {
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(userAgent), sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)))
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	core, err := newCoreSide(cfg, ua, sipConn.LocalAddr(), slogger)
	if err != nil {
		ua.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		cfg: cfg, log: log, core: core, media: media, reg: newRegistrar(),
		observer: nopObserver{},
		calls:    map[string]*Call{}, coreIDs: map[string]*Call{}, flowCalls: map[string]map[*Call]struct{}{},
		parked: map[string]struct{}{}, consentPeriod: consentPeriod,
		webTxs: webTxs{byKey: map[string]webTxEntry{}},
		ctx:    ctx, cancel: cancel,
	}
	none := flowLookup(func(string) (webFlow, bool) { return nil, false })
	g.flows.Store(&none)
	g.nonCall = presence.New(presenceFlows{g}, presenceCore{g}, presenceFlows{g}, presence.Limits{
		MaxBodyBytes: cfg.Presence.MaxBodyBytes, MessageRate: cfg.Presence.MessageRate, MessageBurst: cfg.Presence.MessageBurst,
		MaxSubscriptions: cfg.Presence.MaxSubscriptions,
	}, log.Named("presence"))
	for _, o := range opts {
		o(g)
	}
	if g.sipTLS != nil {
		g.core.tlsPort = g.sipTLS.Addr().(*net.TCPAddr).Port
	} else if core.transport == "tls" {
		cancel()
		ua.Close()
		return nil, errors.New("upstream over TLS needs the SIP TLS listener (sip.tls_listen)")
	}
	if cfg.Auth.Mode == configs.AuthToken {
		if g.tokens, err = newTokenMode(cfg.Auth); err != nil {
			cancel()
			ua.Close()
			return nil, err
		}
	}
	g.unreg = newUnregisterQueue(g, cfg.Upstream.UnregisterRate)
	core.silent = g.upstreamSilent
	// The transaction layer hands us every request with its transaction;
	// we own the transaction until we answer it (sipgo's Server would end
	// it when a handler returns).
	ua.TransactionLayer().OnRequest(g.onCoreRequest)

	listening := &listeningConn{PacketConn: sipConn, ready: make(chan struct{})}
	g.wg.Add(3)
	go func() { defer g.wg.Done(); g.serveCore(listening, sipLn, g.sipTLS) }()
	go func() { defer g.wg.Done(); g.sweepLoop(ctx) }()
	go func() { defer g.wg.Done(); g.unreg.run(ctx) }()
	// Until sipgo reads the listening socket it is not in sipgo's
	// connection pool, and a request to the core would make sipgo bind a
	// second socket to the same port and fail with 503.
	select {
	case <-listening.ready:
	case <-time.After(5 * time.Second):
		g.Close()
		return nil, errors.New("sip udp listener did not start")
	}
	if g.tokens != nil {
		g.goOwned(g.keepPoolRegistered)
	}
	if core.ups.resolver != nil {
		g.goOwned(g.locate)
	}
	if every := cfg.Upstream.KeepaliveInterval; every > 0 {
		g.goOwned(func(ctx context.Context) { g.keepalive(ctx, every) })
	}
	log.Info("sip side ready", zap.String("listen", sipConn.LocalAddr().String()), zap.Int("tls_port", core.tlsPort),
		zap.String("advertise", fmt.Sprintf("%s:%d", core.host, core.port)),
		zap.String("upstream", cfg.Upstream.Proxy), zap.String("transport", core.transport))
	return g, nil
}

// listeningConn closes ready at sipgo's first read of the SIP UDP socket:
// sipgo puts the socket in its connection pool just before it starts
// reading it.
type listeningConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (l *listeningConn) ReadFrom(p []byte) (int, net.Addr, error) {
	l.once.Do(func() { close(l.ready) })
	return l.PacketConn.ReadFrom(p)
}

func (g *Gateway) serveCore(udp net.PacketConn, tcp, tlsLn net.Listener) {
	tp := g.core.ua.TransportLayer()
	var wg sync.WaitGroup
	if tlsLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tp.ServeTLS(tlsLn); err != nil && g.ctx.Err() == nil {
				g.log.Error("sip tls serve stopped", zap.Error(err))
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := tp.ServeUDP(udp); err != nil && g.ctx.Err() == nil {
			g.log.Error("sip udp serve stopped", zap.Error(err))
		}
	}()
	go func() {
		defer wg.Done()
		if err := tp.ServeTCP(tcp); err != nil && g.ctx.Err() == nil {
			g.log.Error("sip tcp serve stopped", zap.Error(err))
		}
	}()
	<-g.ctx.Done()
	// Stop reading first so no message enters sipgo, then close it.
	udp.Close()
	tcp.Close()
	if tlsLn != nil {
		tlsLn.Close()
	}
	wg.Wait()
	g.core.ua.Close()
	clearPools(tp)
}

// clearPools closes sockets sipgo opened after its user agent closed: it
// handles each message on its own goroutine, and one still running at close
// may answer through a new socket.
func clearPools(tp *sip.TransportLayer) {
	for i := 0; i < 10; i++ {
		for _, network := range []string{"udp", "tcp", "tls"} {
			if pool := tp.Pool(network); pool != nil {
				_ = pool.Clear()
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *Gateway) sweepLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.sweepBindings(now)
			g.refused.sweep(now)
		}
	}
}

// AttachWS lets the gateway find browser flows by token. It may be called
// while the gateway serves.
func (g *Gateway) AttachWS(srv *sipws.Server) {
	lookup := flowLookup(func(flow string) (webFlow, bool) {
		c, ok := srv.Lookup(flow)
		if !ok {
			return nil, false
		}
		return c, true
	})
	g.flows.Store(&lookup)
}

func (g *Gateway) lookupFlow(flow string) (webFlow, bool) { return (*g.flows.Load())(flow) }

// goOwned runs f on a goroutine the gateway owns; false once it stopped.
func (g *Gateway) goOwned(f func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx.Err() != nil {
		return false
	}
	g.wg.Add(1)
	go func() { defer g.wg.Done(); f(g.ctx) }()
	return true
}

// ConnClosed ends what belonged to a closed WebSocket (sipws.Handler):
// its bindings are removed at the core, paced, once none of its calls
// waits for the browser to reconnect (reconnect.go). Only the flow's own
// calls and bindings are touched.
func (g *Gateway) ConnClosed(c *sipws.Conn) { g.flowClosed(c.Flow()) }

func (g *Gateway) flowClosed(flow string) {
	g.mu.Lock()
	calls := make([]*Call, 0, len(g.flowCalls[flow]))
	for c := range g.flowCalls[flow] {
		calls = append(calls, c)
	}
	park := len(calls) > 0 && g.cfg.Calls.ReconnectGrace > 0
	if park {
		g.parked[flow] = struct{}{}
	} else {
		delete(g.flowCalls, flow)
	}
	g.mu.Unlock()
	for _, call := range calls {
		call.enqueue(event{kind: evFlowClosed, flowName: flow})
	}
	g.reg.dropFlowQueue(flow)
	g.refused.forget(flow)
	g.tokens.flowEnded(flow)
	if fg, ok := g.nonCall.(interface{ Forget(flow string) }); ok {
		fg.Forget(flow)
	}
	if !park {
		g.releaseFlow(flow)
	}
}

// releaseFlow removes a closed flow's bindings at the core.
func (g *Gateway) releaseFlow(flow string) {
	for _, b := range g.reg.takeFlow(flow) {
		g.unreg.add(b)
	}
}

func webKey(flow, callID string) string { return flow + "|" + callID }

func coreKey(callID, localTag string) string { return callID + "|" + localTag }

// addCall publishes a call that is fully built; it refuses while draining
// and when the browser's Call-ID is already in a call on that flow.
func (g *Gateway) addCall(c *Call) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining || g.ctx.Err() != nil {
		return statusErr(503, "Service Unavailable", errDraining)
	}
	wk := webKey(c.flow, c.web.dlg.callID)
	if _, dup := g.calls[wk]; dup {
		return statusErr(482, "Loop Detected", errors.New("a call with this Call-ID is in progress"))
	}
	g.calls[wk] = c
	g.coreIDs[coreKey(c.core.dlg.callID, c.core.dlg.localTag)] = c
	addCallTo(g.flowCalls, c.flow, c)
	return nil
}

func addCallTo(index map[string]map[*Call]struct{}, flow string, c *Call) {
	set := index[flow]
	if set == nil {
		set = map[*Call]struct{}{}
		index[flow] = set
	}
	set[c] = struct{}{}
}

// removeCall takes a call out of every index. The last call of a parked
// flow releases the flow's bindings.
func (g *Gateway) removeCall(c *Call) {
	if flow, last := g.unindex(c); last {
		g.releaseFlow(flow)
	}
}

func (g *Gateway) unindex(c *Call) (string, bool) {
	g.giveSlot(c)
	g.mu.Lock()
	defer g.mu.Unlock()
	if wk := webKey(c.flow, c.web.dlg.callID); g.calls[wk] == c {
		delete(g.calls, wk)
	}
	if ck := coreKey(c.core.dlg.callID, c.core.dlg.localTag); g.coreIDs[ck] == c {
		delete(g.coreIDs, ck)
	}
	if set := g.flowCalls[c.flow]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(g.flowCalls, c.flow)
		}
	}
	if _, parked := g.parked[c.flow]; parked && len(g.flowCalls[c.flow]) == 0 {
		delete(g.parked, c.flow)
		return c.flow, true
	}
	return "", false
}

func (g *Gateway) callByWeb(flow, callID string) *Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[webKey(flow, callID)]
}

func (g *Gateway) callByCore(key string) *Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.coreIDs[key]
}

// Calls is the number of calls in progress.
func (g *Gateway) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

// running is the number of call goroutines.
func (g *Gateway) running() int { return int(g.live.Load()) }

// RequestStats is what the handler of requests outside calls has done,
// when it tells (presence.Relay does): MESSAGEs by "direction outcome" and
// the subscriptions that exist now.
func (g *Gateway) RequestStats() (messages map[string]uint64, subscriptions int) {
	if s, ok := g.nonCall.(interface {
		Stats() (map[string]uint64, int)
	}); ok {
		return s.Stats()
	}
	return nil, 0
}

// Bindings is the number of browser registrations held.
func (g *Gateway) Bindings() int { return g.reg.count() }

// PendingUnregisters is the number of bindings waiting to be removed at
// the core (paced by upstream.unregister_rate).
func (g *Gateway) PendingUnregisters() int { return g.unreg.len() }

// Drain refuses new calls (503) while the ones in progress go on.
func (g *Gateway) Drain() {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
}

// Close ends every call (BYE to both legs), stops the SIP side and waits
// for every goroutine the gateway started.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.draining = true
	calls := make([]*Call, 0, len(g.calls))
	for _, c := range g.calls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	for _, c := range calls {
		c.enqueue(event{kind: evShutdown})
	}
	for _, c := range calls {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			g.log.Warn("call did not end in time at shutdown", zap.String("call_id", c.id))
		}
	}
	g.nonCall.Close()
	g.mu.Lock()
	g.cancel()
	g.mu.Unlock()
	g.wg.Wait()
	return nil
}
