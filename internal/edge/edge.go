// Package edge serves one TCP port (edge.listen, typically 443) for
// everything a browser allowed only HTTPS needs: WSS and plain WebSocket,
// TURN over TLS and over TCP, and ICE-TCP media. It reads the first bytes
// of each connection, decides what it is, and hands the connection, those
// bytes replayed, to the service's own listener.
package edge

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/internal/hostkey"

	"go.uber.org/zap"
)

// Kind is what a connection on the shared port carries.
type Kind int

const (
	KindUnknown Kind = iota
	// KindWS is a plain WebSocket (an HTTP request).
	KindWS
	// KindWSS is TLS offering ALPN http/1.1 or h2: a browser's WSS, handed
	// over before the handshake so the WebSocket server does TLS itself.
	KindWSS
	// KindTURNTLS is TLS offering ALPN stun.turn (RFC 7443), handed over
	// before the handshake.
	KindTURNTLS
	// KindTLS is TLS without ALPN (Chrome's TURN/TLS, non-browser WSS
	// clients): the edge does the handshake and looks at what follows.
	// WSSTerminated and TURNTerminated get such connections.
	KindTLS
	// KindTURN is TURN over TCP: a STUN message first (RFC 8656 §3.1).
	KindTURN
	// KindICETCP is ICE-TCP media: an RFC 4571 frame holding a STUN
	// Binding first (RFC 6544).
	KindICETCP
)

func (k Kind) String() string {
	switch k {
	case KindWS:
		return "ws"
	case KindWSS:
		return "wss"
	case KindTURNTLS:
		return "turn-tls"
	case KindTLS:
		return "tls"
	case KindTURN:
		return "turn-tcp"
	case KindICETCP:
		return "ice-tcp"
	default:
		return "unknown"
	}
}

// Defaults of Config.
const (
	defaultClassifyTimeout = 5 * time.Second
	defaultMaxPending      = 1024
)

// Config says how the edge classifies.
type Config struct {
	// TLS terminates connections that offer no ALPN; nil refuses them.
	TLS *tls.Config
	// ClassifyTimeout bounds the wait for a connection's first bytes (and
	// the handshake of a terminated one).
	ClassifyTimeout time.Duration
	// MaxPending bounds connections being classified at once; past it new
	// ones are closed (a flood of silent connections holds no more).
	MaxPending int
	// Services names which listeners exist: a kind with no service has its
	// connections closed.
	WS, WSS, TURN, TURNTLS, ICETCP bool
}

// Edge is the shared port.
type Edge struct {
	ln  net.Listener
	cfg Config
	log *zap.Logger

	ws, wss, wssTerminated, turn, turnTLS, turnTerminated, iceTCP *listener

	// mu guards the connections being classified, by source too, and
	// closing (Close has begun: no more are taken).
	mu          sync.Mutex
	classifying map[net.Conn]struct{}
	perSource   map[netip.Prefix]int
	closing     bool
	stop        chan struct{}
	wg          sync.WaitGroup
	once        sync.Once

	counts [KindICETCP + 1]atomic.Uint64
	closed atomic.Uint64 // refused: unknown, no service, timeout, over MaxPending
}

// New serves ln once Serve runs.
func New(ln net.Listener, cfg Config, log *zap.Logger) *Edge {
	if cfg.ClassifyTimeout <= 0 {
		cfg.ClassifyTimeout = defaultClassifyTimeout
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = defaultMaxPending
	}
	e := &Edge{ln: ln, cfg: cfg, log: log, stop: make(chan struct{}),
		classifying: map[net.Conn]struct{}{}, perSource: map[netip.Prefix]int{}}
	mk := func(on bool) *listener {
		if !on {
			return nil
		}
		return newListener(ln.Addr())
	}
	e.ws, e.wss, e.turn, e.turnTLS, e.iceTCP = mk(cfg.WS), mk(cfg.WSS), mk(cfg.TURN), mk(cfg.TURNTLS), mk(cfg.ICETCP)
	if cfg.TLS != nil {
		e.wssTerminated, e.turnTerminated = mk(cfg.WSS), mk(cfg.TURN)
	}
	return e
}

// Listeners of each service; nil for a service that is off. The
// terminated ones yield connections whose TLS the edge already did.
func (e *Edge) WS() net.Listener             { return asListener(e.ws) }
func (e *Edge) WSS() net.Listener            { return asListener(e.wss) }
func (e *Edge) WSSTerminated() net.Listener  { return asListener(e.wssTerminated) }
func (e *Edge) TURN() net.Listener           { return asListener(e.turn) }
func (e *Edge) TURNTLS() net.Listener        { return asListener(e.turnTLS) }
func (e *Edge) TURNTerminated() net.Listener { return asListener(e.turnTerminated) }
func (e *Edge) ICETCP() net.Listener         { return asListener(e.iceTCP) }

func asListener(l *listener) net.Listener {
	if l == nil {
		return nil
	}
	return l
}

// Addr is the shared port's address.
func (e *Edge) Addr() net.Addr { return e.ln.Addr() }

// Counts are the connections classified by kind, and those closed.
func (e *Edge) Counts() (byKind map[Kind]uint64, closed uint64) {
	byKind = map[Kind]uint64{}
	for k := KindWS; k <= KindICETCP; k++ {
		byKind[k] = e.counts[k].Load()
	}
	return byKind, e.closed.Load()
}

// Serve accepts until Close; it returns nil then. An accept error other
// than the listener's close (out of descriptors under a flood) is waited
// out, not taken as the end: the port must come back by itself.
func (e *Edge) Serve() error {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {
				case <-e.stop:
					return nil
				default:
					return err
				}
			}
			select {
			case <-e.stop:
				return nil
			case <-time.After(acceptBackoff):
			}
			continue
		}
		if !e.admit(c) {
			e.closed.Add(1)
			c.Close()
			continue
		}
		go func() {
			defer e.wg.Done()
			defer e.release(c)
			e.route(c)
		}()
	}
}

// acceptBackoff is the wait after an accept error other than a close.
const acceptBackoff = 50 * time.Millisecond

// admit takes a classification slot for c, within MaxPending in all and
// maxPendingPerSource from one source (an IPv6 /64), so one host cannot
// hold the port with silent connections; false once the edge is closing.
func (e *Edge) admit(c net.Conn) bool {
	src := sourceOf(c.RemoteAddr())
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing || len(e.classifying) >= e.cfg.MaxPending || e.perSource[src] >= maxPendingPerSource {
		return false
	}
	e.classifying[c] = struct{}{}
	e.perSource[src]++
	e.wg.Add(1)
	return true
}

func (e *Edge) release(c net.Conn) {
	src := sourceOf(c.RemoteAddr())
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.classifying, c)
	if e.perSource[src]--; e.perSource[src] <= 0 {
		delete(e.perSource, src)
	}
}

// maxPendingPerSource bounds the connections one source has being
// classified at once (a browser opens a few: WSS, TURN, ICE-TCP).
const maxPendingPerSource = 16

// sourceOf is the host a connection counts under.
func sourceOf(a net.Addr) netip.Prefix {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	return hostkey.Of(ta.AddrPort().Addr())
}

// Close stops accepting, closes the services' listeners, cuts the
// connections still being classified and waits for them.
func (e *Edge) Close() error {
	var err error
	e.once.Do(func() {
		close(e.stop)
		err = e.ln.Close()
		for _, l := range []*listener{e.ws, e.wss, e.wssTerminated, e.turn, e.turnTLS, e.turnTerminated, e.iceTCP} {
			if l != nil {
				l.Close()
			}
		}
		e.mu.Lock()
		e.closing = true
		for c := range e.classifying {
			_ = c.SetDeadline(time.Now())
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return err
}

// route classifies c and hands it over, or closes it.
func (e *Edge) route(c net.Conn) {
	deadline := time.Now().Add(e.cfg.ClassifyTimeout)
	_ = c.SetReadDeadline(deadline)
	head := make([]byte, peekLen)
	n, err := io.ReadAtLeast(c, head, peekLen)
	if err != nil {
		e.refuse(c, KindUnknown, "no first bytes", err)
		return
	}
	head = head[:n]
	kind := classify(head)
	var to *listener
	var out net.Conn = &peekedConn{Conn: c, head: bytes.NewReader(head)}
	switch kind {
	case KindTLS:
		alpn, hello, err := clientHelloALPN(c, head)
		if err != nil {
			e.refuse(c, KindTLS, "not a TLS ClientHello", err)
			return
		}
		out = &peekedConn{Conn: c, head: bytes.NewReader(hello)}
		switch {
		case slices.Contains(alpn, "stun.turn"):
			kind, to = KindTURNTLS, e.turnTLS
		case slices.Contains(alpn, "http/1.1") || slices.Contains(alpn, "h2"):
			kind, to = KindWSS, e.wss
		default:
			kind, to, out = e.terminate(out, deadline)
			if out == nil {
				return
			}
		}
	case KindTURN:
		to = e.turn
	case KindICETCP:
		to = e.iceTCP
	case KindWS:
		to = e.ws
	}
	if to == nil {
		e.refuse(out, kind, "no service for it here", nil)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	e.counts[kind].Add(1)
	if ce := e.log.Check(zap.DebugLevel, "edge connection"); ce != nil {
		ce.Write(zap.Stringer("kind", kind), zap.Stringer("remote_addr", c.RemoteAddr()))
	}
	to.deliver(out, e.stop)
}

// terminate does the TLS of a connection that named no protocol and looks
// at what it sends first: a STUN message is TURN, anything else WSS.
func (e *Edge) terminate(c net.Conn, deadline time.Time) (Kind, *listener, net.Conn) {
	if e.cfg.TLS == nil {
		e.refuse(c, KindTLS, "TLS without ALPN is not served here", nil)
		return KindTLS, nil, nil
	}
	tc := tls.Server(c, e.cfg.TLS)
	_ = tc.SetDeadline(deadline)
	if err := tc.Handshake(); err != nil {
		e.refuse(c, KindTLS, "tls handshake", err)
		return KindTLS, nil, nil
	}
	first := make([]byte, 1)
	if _, err := io.ReadFull(tc, first); err != nil {
		e.refuse(c, KindTLS, "nothing after the handshake", err)
		return KindTLS, nil, nil
	}
	_ = tc.SetDeadline(time.Time{})
	out := &terminatedConn{peekedConn: peekedConn{Conn: tc, head: bytes.NewReader(first)}, tls: tc}
	if first[0] <= 1 { // a STUN message's first two bits are 0 (RFC 8489 §5)
		return KindTURNTLS, e.turnTerminated, out
	}
	return KindWSS, e.wssTerminated, out
}

// terminatedConn is a TLS connection the edge did the handshake of.
type terminatedConn struct {
	peekedConn
	tls *tls.Conn
}

// ConnectionState tells the service the connection is TLS.
func (c *terminatedConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// SocketConn is c itself: crypto/tls may hold data the socket no longer
// shows, so nothing may wait on the socket under it.
func (c *terminatedConn) SocketConn() net.Conn { return c }

func (e *Edge) refuse(c net.Conn, kind Kind, why string, err error) {
	e.closed.Add(1)
	if ce := e.log.Check(zap.DebugLevel, "edge connection refused"); ce != nil {
		ce.Write(zap.Stringer("kind", kind), zap.String("reason", why), zap.Stringer("remote_addr", c.RemoteAddr()), zap.Error(err))
	}
	c.Close()
}

// peekLen is what classify needs: an RFC 4571 length and a STUN header's
// first eight bytes.
const peekLen = 10

// stunCookie is the magic cookie of RFC 8489 §5.
const stunCookie = 0x2112A442

// classify names a connection by its first bytes (at least peekLen).
func classify(b []byte) Kind {
	switch {
	case b[0] == 0x16 && b[1] == 0x03: // a TLS handshake record (RFC 8446 §5.1)
		return KindTLS
	case b[0]&0xC0 == 0 && binary.BigEndian.Uint32(b[4:8]) == stunCookie:
		return KindTURN
	case b[2]&0xC0 == 0 && binary.BigEndian.Uint32(b[6:10]) == stunCookie:
		return KindICETCP
	case b[0] >= 'A' && b[0] <= 'Z': // an HTTP method
		return KindWS
	}
	return KindUnknown
}

// errSniffed stops the ClientHello sniffing handshake once it has the hello.
var errSniffed = errors.New("client hello read")

// clientHelloALPN reads the ClientHello of c (whose first bytes are head)
// with crypto/tls and returns its ALPN protocols and every byte read, to
// be replayed to whoever does the handshake.
func clientHelloALPN(c net.Conn, head []byte) ([]string, []byte, error) {
	var rec bytes.Buffer
	rec.Write(head)
	r := io.TeeReader(c, &rec)
	var alpn []string
	seen := false
	err := tls.Server(recordingConn{Conn: c, r: io.MultiReader(bytes.NewReader(head), r)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			alpn, seen = h.SupportedProtos, true
			return nil, errSniffed
		},
	}).Handshake()
	if !seen {
		return nil, nil, err
	}
	return alpn, rec.Bytes(), nil
}
