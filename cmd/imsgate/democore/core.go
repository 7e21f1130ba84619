// Package democore is a small in-process SIP core built on sipgo: a digest
// registrar, an echo target ("echo", "ring", "busy") and a forking caller.
// imsgate embeds it as the default upstream so a browser call works with no
// external server, and the gateway's loopback tests use it as the core.
package democore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// Options configure a Core.
type Options struct {
	// Domain is the home domain, e.g. "imsgate.test".
	Domain string
	// Realm is the digest realm; it defaults to Domain.
	Realm string
	// Users maps user to password; empty or nil turns authentication off.
	Users map[string]string
	// MediaIP is the address RTP sockets bind to and SDP c= lines carry.
	MediaIP string
	// AnswerDelay is how long the echo target rings before it answers.
	AnswerDelay time.Duration
}

// Core is the in-process SIP core. Create with New, serve with Start, stop
// with Close.
type Core struct {
	opts     Options
	log      *zap.Logger
	mediaIP  net.IP
	nonceKey []byte

	ua     *sipgo.UserAgent
	server *sipgo.Server
	client *sipgo.Client

	// lifetime is canceled by Close; done is its Done channel, watched by
	// every goroutine and blocked handler.
	lifetime context.Context
	stopAll  context.CancelFunc
	done     <-chan struct{}
	wg       sync.WaitGroup
	serveWG  sync.WaitGroup // the ServeUDP/ServeTCP goroutines
	// sendMu is held shared while a request is handed to sipgo and
	// exclusively by Close, so no send can open a socket after the user
	// agent has closed its pools.
	sendMu     sync.RWMutex
	sendClosed bool

	mu         sync.Mutex
	started    bool
	closed     bool
	udp        net.PacketConn
	tcp        net.Listener
	bindings   map[string]map[string]*binding // aor -> contact URI -> binding
	bindingSeq uint64
	echoOrder  []*echoCall
	echoByID   map[string]*echoCall
	outCalls   map[string]*OutCall
}

// New builds a Core; nothing is served until Start.
func New(opts Options, log *zap.Logger) (*Core, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Domain == "" {
		return nil, fmt.Errorf("new democore: %w: empty domain", ErrBadRequest)
	}
	if opts.Realm == "" {
		opts.Realm = opts.Domain
	}
	if opts.MediaIP == "" {
		opts.MediaIP = "127.0.0.1"
	}
	mediaIP := net.ParseIP(opts.MediaIP)
	if mediaIP == nil {
		return nil, fmt.Errorf("new democore: %w: media ip %q", ErrBadRequest, opts.MediaIP)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("new democore: nonce key: %w", err)
	}
	slogger := slog.New(zapslog.NewHandler(log.Named("sipgo").Core()))
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("imsgate-democore"),
		sipgo.WithUserAgentHostname(opts.Domain),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)),
	)
	if err != nil {
		return nil, fmt.Errorf("new democore: user agent: %w", err)
	}
	server, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("new democore: server: %w", err)
	}
	lifetime, stopAll := context.WithCancel(context.Background())
	c := &Core{
		lifetime: lifetime,
		stopAll:  stopAll,
		done:     lifetime.Done(),
		opts:     opts,
		log:      log,
		mediaIP:  mediaIP,
		nonceKey: key,
		ua:       ua,
		server:   server,
		bindings: make(map[string]map[string]*binding),
		echoByID: make(map[string]*echoCall),
		outCalls: make(map[string]*OutCall),
	}
	server.OnRegister(c.guard(c.onRegister))
	server.OnInvite(c.guard(c.onInvite))
	server.OnAck(c.guard(c.onAck))
	server.OnBye(c.guard(c.onBye))
	server.OnCancel(c.guard(c.onCancel))
	server.OnInfo(c.guard(c.onInfo))
	server.OnOptions(c.guard(c.onOptions))
	server.OnNoRoute(c.guard(c.onNoRoute))
	return c, nil
}

// Start serves SIP on udp and tcp (either may be nil). The serving
// goroutines belong to the Core and end in Close.
func (c *Core) Start(udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return fmt.Errorf("start democore: %w", ErrNoListener)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("start democore: %w", ErrClosed)
	}
	if c.started {
		return fmt.Errorf("start democore: %w", ErrAlreadyStarted)
	}
	c.started = true
	c.udp, c.tcp = udp, tcp

	var clientOpts []sipgo.ClientOption
	if host := c.advertiseHost(); host != "" {
		clientOpts = append(clientOpts, sipgo.WithClientHostname(host))
	}
	client, err := sipgo.NewClient(c.ua, append(clientOpts, sipgo.WithClientLogger(slog.New(zapslog.NewHandler(c.log.Named("sipgo").Core()))))...)
	if err != nil {
		return fmt.Errorf("start democore: client: %w", err)
	}
	c.client = client

	if udp != nil {
		c.serveWG.Add(1)
		go func() {
			defer c.serveWG.Done()
			if err := c.server.ServeUDP(udp); err != nil && !c.isClosed() {
				c.log.Error("serve sip udp", zap.Error(err))
			}
		}()
	}
	if tcp != nil {
		c.serveWG.Add(1)
		go func() {
			defer c.serveWG.Done()
			if err := c.server.ServeTCP(tcp); err != nil && !c.isClosed() {
				c.log.Error("serve sip tcp", zap.Error(err))
			}
		}()
	}
	if udp != nil {
		// Requests leave from the UDP listener, which sipgo's pool learns
		// about inside ServeUDP; wait (bounded) so a Call right after Start
		// does not race it.
		if err := waitUDPServing(c.ua.TransportLayer(), udp.LocalAddr().String()); err != nil {
			return fmt.Errorf("start democore: %w", err)
		}
	}
	c.log.Info("democore started", zap.String("domain", c.opts.Domain), zap.String("udp", addrString(addrOf(udp))), zap.String("tcp", addrString(listenerAddr(tcp))))
	return nil
}

// Close ends every call, stops serving, waits for all goroutines and
// closes the media sockets. It is safe to call more than once.
func (c *Core) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.stopAll()
	udp, tcp := c.udp, c.tcp
	echoes := append([]*echoCall(nil), c.echoOrder...)
	outs := make([]*OutCall, 0, len(c.outCalls))
	for _, o := range c.outCalls {
		outs = append(outs, o)
	}
	c.mu.Unlock()

	c.sendMu.Lock()
	c.sendClosed = true
	c.sendMu.Unlock()

	// Stop reading first so no new message enters sipgo, then close the
	// user agent, end calls and wait for our goroutines.
	var errs []error
	if tcp != nil {
		if err := tcp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close tcp listener: %w", err))
		}
	}
	if udp != nil {
		if err := udp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close udp socket: %w", err))
		}
	}
	c.serveWG.Wait()
	if err := c.ua.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("close user agent", zap.Error(err))
	}
	for _, e := range echoes {
		e.finish(stateEnded, "core")
	}
	for _, o := range outs {
		o.shutdown()
	}
	c.wg.Wait()
	drainPools(c.ua.TransportLayer())
	c.log.Info("democore stopped")
	return errors.Join(errs...)
}

// guard tracks a handler in the Core's WaitGroup so Close waits for it, and
// refuses requests once closing.
func (c *Core) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !c.track() {
			if !req.IsAck() {
				_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil))
			}
			return
		}
		defer c.wg.Done()
		c.log.Debug("sip request", zap.String("method", req.Method.String()), zap.String("sip_call_id", callIDOf(req)),
			zap.String("remote_addr", req.Source()), zap.String("transport", req.Transport()))
		h(req, tx)
	}
}

// track adds one to the WaitGroup unless the Core is closing.
func (c *Core) track() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// goTracked runs f in a goroutine Close waits for; false when closing.
func (c *Core) goTracked(f func()) bool {
	if !c.track() {
		return false
	}
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

func (c *Core) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *Core) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	c.respond(tx, res)
}

func (c *Core) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	c.respond(tx, res)
}

// respond sends res on tx and logs it; a failure is the peer's problem.
func (c *Core) respond(tx sip.ServerTransaction, res *sip.Response) {
	c.log.Debug("sip response", zap.Int("status", res.StatusCode), zap.String("sip_call_id", callIDOf(res)), zap.String("cseq", cseqOf(res)))
	if err := tx.Respond(res); err != nil {
		c.log.Warn("send response", zap.Int("status", res.StatusCode), zap.String("sip_call_id", callIDOf(res)), zap.Error(err))
	}
}

const allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"

// advertiseHost is the host put in Via and Contact: the listener's IP, or
// MediaIP when the listener is bound to a wildcard address.
func (c *Core) advertiseHost() string {
	for _, a := range []net.Addr{addrOf(c.udp), listenerAddr(c.tcp)} {
		if a == nil {
			continue
		}
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return host
		}
	}
	return c.mediaIP.String()
}

// contactURI is the core's own Contact for the given transport ("UDP"/"TCP").
func (c *Core) contactURI(transport string) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: "democore", Host: c.advertiseHost()}
	c.mu.Lock()
	udp, tcp := c.udp, c.tcp
	c.mu.Unlock()
	if transport == "TCP" && tcp != nil || udp == nil {
		u.Port = portOf(listenerAddr(tcp))
		u.UriParams = sip.HeaderParams{{K: "transport", V: "tcp"}}
		return u
	}
	u.Port = portOf(addrOf(udp))
	return u
}

// udpLocalAddr makes UDP requests leave from the listening socket, so the
// peer sees the same address in Via, Contact and the packet source.
func (c *Core) udpLocalAddr() (sip.Addr, bool) {
	c.mu.Lock()
	udp := c.udp
	c.mu.Unlock()
	if udp == nil {
		return sip.Addr{}, false
	}
	ua, ok := udp.LocalAddr().(*net.UDPAddr)
	if !ok {
		return sip.Addr{}, false
	}
	return sip.Addr{IP: ua.IP, Port: ua.Port}, true
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func addrOf(pc net.PacketConn) net.Addr {
	if pc == nil {
		return nil
	}
	return pc.LocalAddr()
}

func listenerAddr(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

func portOf(a net.Addr) int {
	if a == nil {
		return 0
	}
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func callIDOf(m sip.Message) string {
	if h := m.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func cseqOf(m sip.Message) string {
	if h := m.CSeq(); h != nil {
		return h.Value()
	}
	return ""
}

// boundCtx derives from parent a context that Close also cancels, for work
// Close must cut short.
func (c *Core) boundCtx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(c.lifetime, cancel)
	return ctx, func() { stop(); cancel() }
}

// waitUDPServing polls sipgo's connection pool until addr is served, up to 2 s.
func waitUDPServing(tp *sip.TransportLayer, addr string) error {
	for i := 0; i < 2000; i++ {
		if conn, err := tp.GetConnection("udp", addr); err == nil && conn != nil {
			_, _ = conn.TryClose() // Get took a reference; a listener is never closed by it
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("udp listener %s not served", addr)
}

// drainPools closes sockets sipgo opens after its user agent has closed:
// sipgo handles each received message on its own goroutine, and one parsed
// just before the listener closed opens a socket to answer from. Those
// goroutines run within milliseconds, so a bounded series of sweeps
// catches them.
func drainPools(tp *sip.TransportLayer) {
	for i := 0; i < 10; i++ {
		for _, network := range []string{"udp", "tcp"} {
			if pool := tp.Pool(network); pool != nil {
				_ = pool.Clear()
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}
