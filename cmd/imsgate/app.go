package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/cmd/imsgate/democore"
	"github.com/imsgate/imsgate/cmd/imsgate/webphone"
	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/cdr"
	"github.com/imsgate/imsgate/internal/certs"
	"github.com/imsgate/imsgate/internal/edge"
	"github.com/imsgate/imsgate/internal/hep"
	"github.com/imsgate/imsgate/internal/history"
	"github.com/imsgate/imsgate/internal/listenpair"
	"github.com/imsgate/imsgate/internal/metrics"
	"github.com/imsgate/imsgate/internal/netcheck"
	"github.com/imsgate/imsgate/internal/siptap"
	"github.com/imsgate/imsgate/internal/stunserver"
	"github.com/imsgate/imsgate/internal/timeline"
	"github.com/imsgate/imsgate/internal/turnserver"
	"github.com/imsgate/imsgate/mediabridge"
	"github.com/imsgate/imsgate/sipws"
)

// app is one running gateway: its listeners and the parts wired together.
type app struct {
	log   *zap.Logger
	demo  *democore.Core
	media *mediabridge.Engine
	gw    *b2bua.Gateway
	ws    *sipws.Server
	wsLn  net.Listener // ws.listen, plain WS; nil when not configured
	wssLn net.Listener // ws.tls_listen, WSS; nil when not configured
	sipPC net.PacketConn
	// sipCerts is the key pair of sip.tls_listen; nil without one.
	sipCerts *certs.Store
	// stun and turn are the NAT traversal servers (nat.go); nil when off.
	stun      *stunserver.Server
	turn      *turnserver.Server
	turnCerts *certs.Store
	// edge is edge.listen, the shared port (edge.go); nil when off.
	edge      *edge.Edge
	edgeCerts *certs.Store

	pprof *http.Server
	// admin is admin.listen (admin.go); nil when off.
	admin   *http.Server
	adminLn net.Listener
	metrics *prometheus.Registry
	// cdr writes call detail records (cdr.*); nil when off.
	cdr      *cdr.Writer
	draining atomic.Bool // readyz answers 503 from drain on
	// detachTap stops the core leg's messages reaching the tap.
	detachTap func()
	hep       *hep.Exporter    // nil without hep.address
	timeline  *timeline.Store  // nil with admin.listen off
	history   *history.History // likewise

	wg      sync.WaitGroup
	serveMu sync.Mutex
	served  error
}

// historyEvery is how often the status page's charts get a point.
const historyEvery = 5 * time.Second

// start binds every listener named in cfg and starts serving.
func start(cfg configs.Config, log *zap.Logger) (_ *app, err error) {
	a := &app{log: log}
	defer func() {
		// A listener that failed to bind releases the ones already bound.
		if err != nil {
			a.close(context.Background())
		}
	}()
	if cfg.Demo.Enabled {
		if err := a.startDemo(&cfg); err != nil {
			return nil, err
		}
	}
	reg := metrics.NewRegistry()
	a.metrics = reg
	mediaOpts := []mediabridge.EngineOption{mediabridge.WithSetupObserver(metrics.NewMedia(reg).Setup)}
	if cfg.Edge.Listen != "" {
		if err := a.listenEdge(cfg); err != nil {
			return nil, err
		}
		mediaOpts = append(mediaOpts, mediabridge.WithWebRTCTCPListener(a.edge.ICETCP()))
	}
	a.media, err = mediabridge.NewEngine(cfg.Media, log.Named("media"), mediaOpts...)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if err := a.startNAT(cfg); err != nil {
		return nil, err
	}
	// TCP on the same port as UDP, so one Contact serves both.
	pc, tcp, err := listenUDPAndTCP("sip.listen", cfg.SIP.Listen)
	if err != nil {
		return nil, err
	}
	a.sipPC = pc
	var gwOpts []b2bua.Option
	if cfg.SIP.TLSListen != "" {
		tlsLn, err := a.listenSIPTLS(cfg)
		if err != nil {
			tcp.Close()
			return nil, err
		}
		gwOpts = append(gwOpts, b2bua.WithSIPTLS(tlsLn))
	}
	if l := a.relayLookup(); l != nil {
		gwOpts = append(gwOpts, b2bua.WithRelayLookup(l))
	}
	gwOpts = append(gwOpts, b2bua.WithObserver(metrics.NewCalls(reg)))
	if cfg.CDR.File != "" || cfg.CDR.Webhook != "" {
		cc, err := cdrConfig(cfg.CDR)
		if err == nil {
			a.cdr, err = cdr.New(cc, log.Named("cdr"))
		}
		if err != nil {
			tcp.Close()
			return nil, err
		}
		gwOpts = append(gwOpts, b2bua.WithObserver(a.cdr))
	}
	// The call timelines (/api/calls) live on the admin listener.
	if cfg.Admin.Listen != configs.AdminOff {
		a.timeline = timeline.New(cfg.Admin.TimelineCalls)
		a.history = history.New(historyEvery, time.Hour, func() int { return a.gw.Calls() })
		gwOpts = append(gwOpts, b2bua.WithObserver(a.timeline), b2bua.WithObserver(a.history))
	}
	var hepSink siptap.Sink
	if cfg.HEP.Address != "" {
		if a.hep, err = hep.New(cfg.HEP, log.Named("hep")); err != nil {
			tcp.Close()
			return nil, fmt.Errorf("hep.address: %w", err)
		}
		hepSink = a.hep
		metrics.RegisterHEP(reg, a.hep.Sent.Load, a.hep.Dropped.Load)
		gwOpts = append(gwOpts, b2bua.WithObserver(a.hep))
	}
	// Every SIP message of both legs, for the counters, HEP and timelines;
	// the core leg's from before the gateway starts (its first REGISTERs
	// and keepalives), by its SIP port until it can tell for itself.
	var timelineSink siptap.Sink
	if a.timeline != nil {
		timelineSink = a.timeline
	}
	tap := siptap.New(metrics.NewSIPMessages(reg), hepSink, timelineSink)
	var owner atomic.Pointer[siptap.CoreOwner]
	sipPort := pc.LocalAddr().(*net.UDPAddr).Port
	a.detachTap = siptap.AttachCore(tap, func(local, remote, transport string) (string, bool) {
		if o := owner.Load(); o != nil {
			return (*o)(local, remote, transport)
		}
		_, port, _ := net.SplitHostPort(local)
		return transport, port == strconv.Itoa(sipPort)
	})
	a.gw, err = b2bua.New(cfg, a.media, pc, tcp, log.Named("b2bua"), gwOpts...)
	if err != nil {
		tcp.Close()
		return nil, err
	}
	gwOwner := a.gw.CoreTapOwner()
	owner.Store(&gwOwner)
	if a.timeline != nil {
		a.timeline.SampleQoS(a.gw.LiveQoS)
		a.history.Start()
	}
	opts := []sipws.Option{sipws.WithTLSPolicy(cfg.TLS), sipws.WithLimits(cfg.Limits), sipws.WithTap(tap)}
	if adm := a.gw.Admission(); adm != nil {
		opts = append(opts, sipws.WithAdmission(adm))
	}
	// Beside the WebSocket: /ice-servers, the /netcheck/ page, and the web phone when on.
	pages := http.NewServeMux()
	pages.Handle("/ice-servers", a.iceServers(cfg, a.gw.TokenSubject()))
	pages.Handle("/netcheck/", netcheck.Handler(a.media, netcheck.Config{Origins: cfg.WS.Origins}, log.Named("netcheck")))
	if cfg.WS.WebPhone {
		pages.Handle("/", webphone.Handler(cfg.WS.WebPhoneLibDir, log.Named("webphone")))
	}
	opts = append(opts, sipws.WithHTTPHandler(pages))
	a.ws, err = sipws.NewServer(cfg.WS, a.gw, log.Named("ws"), opts...)
	if err != nil {
		return nil, err
	}
	a.gw.AttachWS(a.ws)
	if err := a.startAdmin(cfg.Admin, reg); err != nil {
		return nil, err
	}
	if cfg.Debug.PprofListen != "" {
		if err := a.startPprof(cfg.Debug.PprofListen); err != nil {
			return nil, err
		}
	}
	// One sipws.Server behind both listeners: one registry of flows.
	var wsURL, wssURL, page string
	if cfg.WS.Listen != "" {
		if a.wsLn, err = net.Listen("tcp", cfg.WS.Listen); err != nil {
			return nil, fmt.Errorf("ws.listen: %w", err)
		}
		a.serve(a.ws.Serve, a.wsLn)
		wsURL = "ws://" + a.wsLn.Addr().String() + "/"
		page = "http://" + a.wsLn.Addr().String() + "/"
	}
	if cfg.WS.TLSListen != "" {
		if a.wssLn, err = net.Listen("tcp", cfg.WS.TLSListen); err != nil {
			return nil, fmt.Errorf("ws.tls_listen: %w", err)
		}
		a.serve(a.ws.ServeTLS, a.wssLn)
		wssURL = "wss://" + a.wssLn.Addr().String() + "/"
		page = "https://" + a.wssLn.Addr().String() + "/"
	}
	if a.edge != nil {
		a.serve(a.ws.Serve, a.edge.WS())
		a.serve(a.ws.ServeTLS, a.edge.WSS())
		a.serve(a.ws.Serve, a.edge.WSSTerminated()) // TLS done by the edge
		a.serveEdge()
		if wssURL == "" {
			wssURL = "wss://" + a.edge.Addr().String() + "/"
			page = "https://" + a.edge.Addr().String() + "/"
		}
	}
	log.Info("imsgate ready", zap.String("ws", wsURL), zap.String("wss", wssURL),
		zap.String("sip", pc.LocalAddr().String()), zap.String("webrtc", a.media.WebRTCAddr().String()),
		zap.String("upstream", cfg.Upstream.Proxy), zap.String("auth", cfg.Auth.Mode), zap.Bool("web_phone", cfg.WS.WebPhone))
	if cfg.WS.WebPhone {
		log.Info("web phone page", zap.String("url", page))
	}
	return a, nil
}

// listenUDPAndTCP binds addr over UDP and TCP on one port; key names the
// config key in an error.
func listenUDPAndTCP(key, addr string) (net.PacketConn, net.Listener, error) {
	pc, ln, err := listenpair.UDPAndTCP(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %w", key, err)
	}
	return pc, ln, nil
}

// serve runs one WebSocket listener until the server shuts down.
func (a *app) serve(serve func(net.Listener) error, ln net.Listener) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.serveMu.Lock()
			a.served = err
			a.serveMu.Unlock()
			a.log.Error("websocket server stopped", zap.Error(err))
		}
	}()
}

// listenSIPTLS binds sip.tls_listen with its reloadable key pair.
func (a *app) listenSIPTLS(cfg configs.Config) (net.Listener, error) {
	st, err := certs.NewStore(cfg.SIP.TLSCert, cfg.SIP.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_cert: %w", err)
	}
	tlsCfg, err := certs.ServerConfig(cfg.TLS, st)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.SIP.TLSListen)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_listen: %w", err)
	}
	a.sipCerts = st
	return tls.NewListener(ln, tlsCfg), nil
}

// reloadCertificates re-reads the key pairs of the TLS listeners (SIGHUP).
// A bad file keeps the old pair: an operator's mistake must not take TLS
// down. Open connections keep the pair they shook hands with.
func (a *app) reloadCertificates() {
	if a.wssLn == nil && a.sipCerts == nil && a.turnCerts == nil && a.edgeCerts == nil {
		a.log.Info("SIGHUP: no ws.tls_listen, sip.tls_listen, turn.tls_listen or edge.listen, no certificate to reload")
		return
	}
	if a.edgeCerts != nil {
		if _, err := a.edgeCerts.Reload(); err != nil {
			a.log.Error("edge tls certificate reload failed; the old certificate stays in use", zap.Error(err))
		}
	}
	if a.turnCerts != nil {
		if leaf, err := a.turnCerts.Reload(); err != nil {
			a.log.Error("turn tls certificate reload failed; the old certificate stays in use", zap.Error(err))
		} else {
			a.log.Info("turn tls certificate loaded", zap.String("subject", leaf.Subject.String()), zap.Time("not_after", leaf.NotAfter))
		}
	}
	if a.wssLn != nil || a.edge != nil {
		if err := a.ws.ReloadCertificate(); err != nil {
			a.log.Error("certificate reload failed; the old certificate stays in use", zap.Error(err))
		}
	}
	if a.sipCerts != nil {
		leaf, err := a.sipCerts.Reload()
		if err != nil {
			a.log.Error("sip tls certificate reload failed; the old certificate stays in use", zap.Error(err))
			return
		}
		a.log.Info("sip tls certificate loaded", zap.String("subject", leaf.Subject.String()), zap.Time("not_after", leaf.NotAfter))
	}
}

// startDemo runs the embedded core and points the upstream at it.
func (a *app) startDemo(cfg *configs.Config) error {
	demo, err := democore.New(democore.Options{Domain: cfg.Upstream.Domain, MediaIP: cfg.Media.PublicIP}, a.log.Named("democore"))
	if err != nil {
		return fmt.Errorf("demo core: %w", err)
	}
	pc, tcp, err := listenUDPAndTCP("demo.listen", cfg.Demo.Listen)
	if err != nil {
		return err
	}
	if err := demo.Start(pc, tcp); err != nil {
		pc.Close()
		tcp.Close()
		return fmt.Errorf("demo core: %w", err)
	}
	a.demo = demo
	cfg.Upstream.Proxy = "sip:" + pc.LocalAddr().String() + ";transport=udp"
	a.log.Warn("demo core enabled: registrations need no password and sip:echo@"+cfg.Upstream.Domain+" echoes audio; set demo.enabled: false in production",
		zap.String("listen", pc.LocalAddr().String()))
	return nil
}

// startPprof serves Go's profiler for an operator (debug.pprof_listen).
func (a *app) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug.pprof_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = a.pprof.Serve(ln)
	}()
	a.log.Warn("pprof enabled", zap.String("listen", ln.Addr().String()))
	return nil
}

// AdminAddr is the bound admin.listen address.
func (a *app) AdminAddr() string { return a.adminLn.Addr().String() }

// WSAddr is the bound plain WebSocket address (ws.listen).
func (a *app) WSAddr() string { return a.wsLn.Addr().String() }

// WSSAddr is the bound secure WebSocket address (ws.tls_listen).
func (a *app) WSSAddr() string { return a.wssLn.Addr().String() }

// drain refuses new registrations' calls and upgrades, then waits up to
// timeout for the calls in progress to end.
func (a *app) drain(ctx context.Context, timeout time.Duration) {
	a.draining.Store(true)
	a.ws.Drain()
	a.gw.Drain()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for a.gw.Calls() > 0 {
		a.log.Info("draining", zap.Int("calls", a.gw.Calls()), zap.Int("connections", a.ws.Len()))
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// close stops everything in the reverse order of start.
func (a *app) close(ctx context.Context) error {
	if a.gw != nil {
		a.gw.Close() // closes the SIP sockets too
	} else if a.sipPC != nil {
		a.sipPC.Close()
	}
	if a.detachTap != nil {
		a.detachTap()
	}
	if a.timeline != nil {
		a.timeline.Close()
		a.history.Close()
	}
	if a.cdr != nil {
		// After the gateway: the calls it ended have their records queued.
		if err := a.cdr.Close(); err != nil {
			a.log.Warn("cdr close", zap.Error(err))
		}
	}
	if a.ws != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := a.ws.Shutdown(ctx); err != nil {
			a.log.Warn("websocket shutdown", zap.Error(err))
		}
	} else {
		for _, ln := range []net.Listener{a.wsLn, a.wssLn} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	if a.hep != nil {
		// After the gateway (its calls' quality reports are queued) and the
		// WebSocket server and core tap (nothing more is tapped).
		a.hep.Close()
	}
	if a.pprof != nil {
		a.pprof.Close()
	}
	if a.admin != nil {
		a.admin.Close()
	}
	if a.edge != nil {
		a.edge.Close()
	}
	if a.turn != nil {
		if err := a.turn.Close(); err != nil {
			a.log.Warn("turn server close", zap.Error(err))
		}
	}
	if a.stun != nil {
		if err := a.stun.Close(); err != nil {
			a.log.Warn("stun server close", zap.Error(err))
		}
	}
	a.wg.Wait()
	if a.media != nil {
		a.media.Close()
	}
	if a.demo != nil {
		a.demo.Close()
	}
	a.serveMu.Lock()
	defer a.serveMu.Unlock()
	return a.served
}
