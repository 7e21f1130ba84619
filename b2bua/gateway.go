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
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/mediabridge"
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

// Gateway joins the WebSocket side, the core side and the media bridge.
type Gateway struct {
	cfg   configs.Config
	log   *zap.Logger
	core  *coreSide
	media mediaEngine
	reg   *registrar

	lookupFlow func(flow string) (webFlow, bool)

	mu       sync.Mutex
	calls    map[string]*Call // by web-leg Call-ID
	coreIDs  map[string]*Call // by core-leg Call-ID and our tag (coreKey)
	webTxs   map[string]*webClientTx
	draining bool

	wg     sync.WaitGroup // every goroutine the gateway starts
	ctx    context.Context
	cancel context.CancelFunc
}

// New makes a gateway. sipConn and sipLn are the bound UDP socket and TCP
// listener toward the core (taken as arguments so tests use 127.0.0.1:0).
func New(cfg configs.Config, media mediaEngine, sipConn net.PacketConn, sipLn net.Listener, log *zap.Logger) (*Gateway, error) {
	// sipgo logs through slog; its lines land in the same zap core.
	slogger := slog.New(zapslog.NewHandler(log.Named("sip").Core()))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(userAgent),
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
		calls: map[string]*Call{}, coreIDs: map[string]*Call{}, webTxs: map[string]*webClientTx{},
		ctx: ctx, cancel: cancel,
		lookupFlow: func(string) (webFlow, bool) { return nil, false },
	}
	core.srv.OnInvite(g.onCoreInvite)
	core.srv.OnAck(g.onCoreInDialog)
	core.srv.OnBye(g.onCoreInDialog)
	core.srv.OnInfo(g.onCoreInDialog)
	core.srv.OnUpdate(g.onCoreInDialog)
	core.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched no INVITE transaction (RFC 3261 9.2).
		_ = tx.Respond(response(req, 481, "Call/Transaction Does Not Exist", ""))
	})
	core.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(response(req, 200, "OK", ""))
	})
	core.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(response(req, 501, "Not Implemented", ""))
	})

	listening := &listeningConn{PacketConn: sipConn, ready: make(chan struct{})}
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.serveCore(listening, sipLn) }()
	go func() { defer g.wg.Done(); g.sweepLoop(ctx) }()
	// Until sipgo reads the listening socket it is not in sipgo's
	// connection pool, and a request to the core would make sipgo bind a
	// second socket to the same port and fail with 503.
	select {
	case <-listening.ready:
	case <-time.After(5 * time.Second):
		g.Close()
		return nil, errors.New("sip udp listener did not start")
	}
	log.Info("sip side ready", zap.String("listen", sipConn.LocalAddr().String()),
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

func (g *Gateway) serveCore(udp net.PacketConn, tcp net.Listener) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := g.core.srv.ServeUDP(udp); err != nil && g.ctx.Err() == nil {
			g.log.Error("sip udp serve stopped", zap.Error(err))
		}
	}()
	go func() {
		defer wg.Done()
		if err := g.core.srv.ServeTCP(tcp); err != nil && g.ctx.Err() == nil {
			g.log.Error("sip tcp serve stopped", zap.Error(err))
		}
	}()
	<-g.ctx.Done()
	// Stop reading first so no message enters sipgo, then close it.
	udp.Close()
	tcp.Close()
	wg.Wait()
	g.core.ua.Close()
	clearPools(g.core.ua.TransportLayer())
}

// clearPools closes sockets sipgo opened after its user agent closed: it
// handles each message on its own goroutine, and one still running at close
// may answer through a new socket.
func clearPools(tp *sip.TransportLayer) {
	for i := 0; i < 10; i++ {
		for _, network := range []string{"udp", "tcp"} {
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
		}
	}
}

// AttachWS lets the gateway find browser flows by token.
func (g *Gateway) AttachWS(srv *sipws.Server) {
	g.lookupFlow = func(flow string) (webFlow, bool) {
		c, ok := srv.Lookup(flow)
		if !ok {
			return nil, false
		}
		return c, true
	}
}

// go runs f on a goroutine the gateway owns.
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

// HandleMessage takes one SIP message from a browser's WebSocket
// (sipws.Handler), in order for its flow; it never blocks.
func (g *Gateway) HandleMessage(c *sipws.Conn, msg sip.Message) {
	g.handleWeb(c, msg)
}

func (g *Gateway) handleWeb(f webFlow, msg sip.Message) {
	switch m := msg.(type) {
	case *sip.Response:
		g.mu.Lock()
		tx := g.webTxs[branchOf(m)+string(cseqMethod(m))]
		g.mu.Unlock()
		if tx == nil || tx.flow != f.Flow() {
			g.log.Debug("response matches no transaction", zap.String("flow", f.Flow()), zap.Int("status", m.StatusCode))
			return
		}
		tx.deliver(m)
	case *sip.Request:
		g.handleWebRequest(f, m)
	}
}

func cseqMethod(msg sip.Message) sip.RequestMethod {
	_, m := cseqOf(msg)
	return m
}

func (g *Gateway) handleWebRequest(f webFlow, req *sip.Request) {
	log := g.log.With(zap.String("flow", f.Flow()), zap.String("method", string(req.Method)), zap.String("sip_call_id", callIDOf(req)))
	log.Debug("web request", zap.String("request", req.StartLine()))
	if req.To() == nil || req.From() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		g.replyWeb(f, response(req, 400, "Bad Request", ""), log)
		return
	}
	if cseqMethod(req) != req.Method {
		g.replyWeb(f, response(req, 400, "Bad Request", ""), log)
		return
	}
	inDialog := tagOf(req.To().Params) != ""
	switch {
	case req.Method == sip.REGISTER:
		if !g.goOwned(func(ctx context.Context) { g.handleRegister(ctx, f, req) }) {
			g.replyWeb(f, response(req, 503, "Service Unavailable", ""), log)
		}
	case req.Method == sip.INVITE && !inDialog:
		g.startWebCall(f, req, log)
	case req.Method == sip.CANCEL || req.Method == sip.ACK || inDialog:
		c := g.callByWebID(callIDOf(req))
		if c == nil || c.web.flow.Flow() != f.Flow() {
			if req.Method != sip.ACK {
				g.replyWeb(f, response(req, 481, "Call/Transaction Does Not Exist", ""), log)
			}
			return
		}
		c.enqueue(event{kind: evWebRequest, req: req})
	case req.Method == sip.OPTIONS:
		g.replyWeb(f, response(req, 200, "OK", ""), log)
	default:
		res := response(req, 501, "Not Implemented", "")
		g.replyWeb(f, res, log)
	}
}

// ConnClosed ends what belonged to a closed WebSocket (sipws.Handler): its
// bindings are removed at the core; its calls end.
func (g *Gateway) ConnClosed(c *sipws.Conn) {
	flow := c.Flow()
	g.mu.Lock()
	var ended []*Call
	for _, call := range g.calls {
		if call.web.flow.Flow() == flow {
			ended = append(ended, call)
		}
	}
	for k, tx := range g.webTxs {
		if tx.flow == flow {
			tx.fail()
			delete(g.webTxs, k)
		}
	}
	g.mu.Unlock()
	for _, call := range ended {
		call.enqueue(event{kind: evFlowClosed})
	}
	g.goOwned(func(ctx context.Context) {
		g.unregisterFlow(context.WithoutCancel(ctx), flow, nil, g.log.With(zap.String("flow", flow)))
	})
}

func (g *Gateway) replyWeb(f webFlow, res *sip.Response, log *zap.Logger) {
	if err := f.WriteMessage(res); err != nil {
		log.Debug("write to browser failed", zap.Error(err))
	}
}

// callByWebID finds a call by its web-leg Call-ID.
func (g *Gateway) callByWebID(id string) *Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[id]
}

func (g *Gateway) callByCoreID(key string) *Call {
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

// Bindings is the number of browser registrations held.
func (g *Gateway) Bindings() int { return g.reg.count() }

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
	g.mu.Lock()
	g.cancel()
	g.mu.Unlock()
	g.wg.Wait()
	return nil
}

var errClosed = errors.New("gateway closed")
