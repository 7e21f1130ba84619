package mediabridge

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// A probe is a browser side with nothing behind it: the gateway answers a
// browser's offer naming only the candidates asked for, runs ICE and DTLS
// as for a call, and ends. It tells whether a browser's media reaches the
// gateway over one path (the /netcheck page). It takes no core port pair
// and carries no media: the answer is a=inactive and the poll loop drops
// whatever RTP still comes.

// defaultProbeAge bounds a probe whose config names no MaxAge.
const defaultProbeAge = 20 * time.Second

// ProbeConfig says what a probe answers and how long it may live.
type ProbeConfig struct {
	// Transports are the candidates the answer names: TransportUDP, the
	// shared UDP port; TransportTCP, the ICE-TCP one (ErrNoICETCP when the
	// engine has none). Empty names every one the engine has, as a call's
	// answer does.
	Transports []Transport
	// MaxAge ends the probe this long after it started; zero is 20 s.
	MaxAge time.Duration
	// OnEnd, if set, runs once when the probe has ended, whatever the
	// reason, on a goroutine of the engine's. It must not block or call
	// Close.
	OnEnd func(ProbeResult)
}

// ProbeEnd is why a probe ended. Zero is Unknown.
type ProbeEnd int

const (
	ProbeEndUnknown  ProbeEnd = iota
	ProbeEndClosed            // Close was called (the page is done with it)
	ProbeEndGone              // the browser went: its ICE-TCP connection closed, or it sent nothing for 30 s (RFC 7675)
	ProbeEndFailed            // the DTLS handshake failed
	ProbeEndExpired           // ProbeConfig.MaxAge passed
	ProbeEndShutdown          // the engine closed
)

func (e ProbeEnd) String() string {
	switch e {
	case ProbeEndClosed:
		return "closed"
	case ProbeEndGone:
		return "browser_gone"
	case ProbeEndFailed:
		return "dtls_failed"
	case ProbeEndExpired:
		return "expired"
	case ProbeEndShutdown:
		return "shutdown"
	}
	return "unknown"
}

// ProbeResult is what a probe saw.
type ProbeResult struct {
	End ProbeEnd
	// Connected: ICE and DTLS completed, Setup after the probe started,
	// with the browser at Remote over Transport (the TCP connection's
	// remote address for ICE-TCP, the relay's for TURN).
	Connected bool
	Transport Transport
	Remote    netip.AddrPort
	Setup     time.Duration
	// Age is how long the probe lived.
	Age time.Duration
}

// Probe is one browser's check of a path; see NewProbe.
type Probe struct {
	ep      *webEndpoint
	started time.Time
	maxAge  time.Duration
	onEnd   func(ProbeResult)

	conn     atomic.Pointer[ProbeResult] // set at EventConnected
	goneWhy  atomic.Int64                // a ProbeEnd, before gone closes
	gone     chan struct{}
	goneOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed once result is set
	result   ProbeResult
}

// NewProbe answers a browser's offer with a probe: our ICE credentials and
// DTLS fingerprint, the offer's first audio codec, a=inactive, and only the
// candidates cfg names. The probe ends at Close, when the browser goes or
// its DTLS fails, at cfg.MaxAge, or when the engine closes. A bad offer is
// ErrBadSDP or ErrNoCommonCodec.
func (e *Engine) NewProbe(log *zap.Logger, offer []byte, cfg ProbeConfig) (*Probe, []byte, error) {
	d, err := readDescription(e.allowed, LegWeb, offer, true)
	if err != nil {
		return nil, nil, fmt.Errorf("probe offer: %w", err)
	}
	udpPort, tcpPort, err := e.probeCandidates(cfg.Transports)
	if err != nil {
		return nil, nil, err
	}
	if !e.probes.add() {
		return nil, nil, fmt.Errorf("new probe: %w", errEngineClosed)
	}
	id := e.nextID.Add(1)
	p := &Probe{
		started: time.Now(),
		maxAge:  cfg.MaxAge,
		onEnd:   cfg.OnEnd,
		gone:    make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if p.maxAge <= 0 {
		p.maxAge = defaultProbeAge
	}
	// A forwarder with no core and no payload types: any RTP the browser
	// still sends is counted and dropped.
	fwd := &forwarder{clock: &e.sock.clock}
	p.ep = newWebEndpoint(e.sock, e.cert, fwd, log, fmt.Sprintf("imsgate-probe-%d", id))
	p.ep.onEvent = p.event
	role, setup := answerRole(d.web.setup)
	mid := d.web.mid
	if mid == "" {
		mid = "0"
	}
	var audio []codec
	for _, c := range d.codecs {
		if !c.isDTMF() {
			audio = []codec{c} // negotiate left at least one
			break
		}
	}
	ufrag, pwd := p.ep.credentials()
	answer, err := webSDPParams{
		sessionID: uint64(p.started.Unix())<<16 | id&0xffff,
		version:   1,
		publicIP:  e.publicIP,
		port:      udpPort,
		tcpPort:   tcpPort,
		ufrag:     ufrag,
		pwd:       pwd,
		cert:      e.cert,
		setup:     setup,
		mid:       mid,
		rtcpRsize: d.web.rtcpRsize,
		codecs:    audio,
		dir:       directionInactive,
		ssrc:      p.ep.ssrc,
		cname:     p.ep.cname,
		streamID:  p.ep.streamID,
	}.build(d.layout())
	if err != nil {
		p.ep.close()
		e.probes.wg.Done()
		return nil, nil, fmt.Errorf("probe answer: %w", err)
	}
	p.ep.start(role, d.web.fingerprint)
	go p.run(e.probes.quit, &e.probes.wg)
	return p, answer, nil
}

// probeCandidates are the ports of the candidates a probe names; 0 leaves
// one out.
func (e *Engine) probeCandidates(ts []Transport) (udpPort, tcpPort int, err error) {
	if len(ts) == 0 {
		return e.webRTCPort(), e.webRTCTCPPort(), nil
	}
	for _, t := range ts {
		switch t {
		case TransportUDP:
			udpPort = e.webRTCPort()
		case TransportTCP:
			if e.tcp == nil {
				return 0, 0, ErrNoICETCP
			}
			tcpPort = e.webRTCTCPPort()
		default:
			return 0, 0, fmt.Errorf("%w: %v", errProbeTransport, t)
		}
	}
	return udpPort, tcpPort, nil
}

// event hears the endpoint on a media goroutine: it only records.
func (p *Probe) event(ev Event) {
	switch ev.Kind {
	case EventConnected:
		transport, remote := p.ep.path()
		p.conn.CompareAndSwap(nil, &ProbeResult{Connected: true, Transport: transport, Remote: remote, Setup: time.Since(p.started)})
	case EventFailed:
		p.browserGone(ProbeEndFailed)
	case EventConsentLost:
		p.browserGone(ProbeEndGone)
	}
}

func (p *Probe) browserGone(why ProbeEnd) {
	p.goneOnce.Do(func() {
		p.goneWhy.Store(int64(why))
		close(p.gone)
	})
}

// run waits for the probe's end and tears it down; the engine owns it.
func (p *Probe) run(quit <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	timer := time.NewTimer(p.maxAge)
	defer timer.Stop()
	var end ProbeEnd
	select {
	case <-p.stop:
		end = ProbeEndClosed
	case <-p.gone:
		end = ProbeEnd(p.goneWhy.Load())
	case <-timer.C:
		end = ProbeEndExpired
	case <-quit:
		end = ProbeEndShutdown
	}
	p.ep.close()
	r := ProbeResult{}
	if c := p.conn.Load(); c != nil {
		r = *c
	}
	r.End, r.Age = end, time.Since(p.started)
	p.result = r
	close(p.done)
	if p.onEnd != nil {
		p.onEnd(r)
	}
}

// Close ends the probe, if it has not ended, and returns what it saw once
// its endpoint is gone. It is idempotent.
func (p *Probe) Close() ProbeResult {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	return p.result
}

// probeSet is the engine's running probes: Close ends them before the
// sockets go.
type probeSet struct {
	mu     sync.Mutex
	closed bool
	quit   chan struct{}
	wg     sync.WaitGroup
}

func newProbeSet() *probeSet { return &probeSet{quit: make(chan struct{})} }

// add counts a probe in, unless the engine is closing.
func (s *probeSet) add() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// close ends every probe and waits for them.
func (s *probeSet) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
