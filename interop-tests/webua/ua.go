// Package webua is a Go "browser" for tests and load: a SIP-over-WebSocket
// user agent (RFC 7118) with a pion PeerConnection for media, behaving on the
// wire like JsSIP does (.invalid Via and Contact, non-trickle ICE, BUNDLE,
// rtcp-mux, DTLS actpass offers).
package webua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

const (
	userAgent    = "imsgate-webua"
	writeTimeout = 5 * time.Second
	// Channel depths: the reader never blocks on a slow consumer, it drops.
	incomingDepth  = 64
	unmatchedDepth = 64
)

// Config describes one browser.
type Config struct {
	URL      string // ws://127.0.0.1:8080/
	AoR      string // sip:alice@imsgate.test
	User     string // digest user; default the AoR user
	Password string
	Origin   string // optional Origin header
	Log      *zap.Logger
	API      *webrtc.API // optional shared API; default: NewAPI()
	// LocalIP is the WebSocket's source address; nil lets the system
	// choose. A load generator spreads clients over 127.0.0.0/8 with it,
	// since one source address has only ~28,000 ephemeral ports.
	LocalIP net.IP
}

// UA is one SIP-over-WebSocket user agent with its single WebSocket.
type UA struct {
	log  *zap.Logger
	api  *webrtc.API
	dial func(context.Context) (*websocket.Conn, error)
	conn *websocket.Conn // written under writeMu; Redial replaces it

	aor      sip.Uri
	user     string
	password string
	viaHost  string // <random>.invalid, as JsSIP puts in Via
	contact  sip.Uri
	instance string // +sip.instance for REGISTER

	regCallID  string
	regFromTag string

	writeMu sync.Mutex

	mu        sync.Mutex
	closing   bool
	txs       map[string]func(*sip.Response)
	calls     map[string]*Call
	regCSeq   uint32
	peerClose *websocket.CloseError
	// dropped is the connection Drop closed: its reader ends quietly and
	// the calls wait for Redial. connDone closes when conn's reader ends.
	dropped  *websocket.Conn
	connDone chan struct{}
	// abandoned is the connection Abandon left open; what arrives on it
	// is not read, and abandonedClose receives how the gateway closed it.
	abandoned      *websocket.Conn
	abandonedClose chan *websocket.CloseError

	incoming   chan *Call
	messages   chan Message
	unmatched  chan []byte
	readerDone chan struct{} // closed when the last connection is gone
	finishOnce sync.Once
	teardown   sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// Dial opens the WebSocket with the "sip" subprotocol and starts reading.
func Dial(ctx context.Context, cfg Config) (*UA, error) {
	u := &UA{
		log:        cfg.Log,
		api:        cfg.API,
		password:   cfg.Password,
		viaHost:    randomToken(12) + ".invalid",
		instance:   "<urn:uuid:" + randomUUID() + ">",
		regCallID:  randomToken(22),
		regFromTag: randomToken(10),
		txs:        make(map[string]func(*sip.Response)),
		calls:      make(map[string]*Call),
		incoming:   make(chan *Call, incomingDepth),
		messages:   make(chan Message, incomingDepth),
		unmatched:  make(chan []byte, unmatchedDepth),
		readerDone: make(chan struct{}),
	}
	if u.log == nil {
		u.log = zap.NewNop()
	}
	if u.api == nil {
		u.api = NewAPI()
	}
	if err := sip.ParseUri(cfg.AoR, &u.aor); err != nil {
		return nil, fmt.Errorf("parse aor %q: %w", cfg.AoR, err)
	}
	u.user = cfg.User
	if u.user == "" {
		u.user = u.aor.User
	}
	u.contact = sip.Uri{
		Scheme:    "sip",
		User:      randomToken(8),
		Host:      randomToken(12) + ".invalid",
		UriParams: params("transport", "ws"),
	}
	u.log = u.log.With(zap.String("aor", cfg.AoR))

	header := http.Header{}
	if cfg.Origin != "" {
		header.Set("Origin", cfg.Origin)
	}
	dialer := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 10 * time.Second}
	if cfg.LocalIP != nil {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: cfg.LocalIP}}
		dialer.NetDialContext = nd.DialContext
	}
	u.dial = func(ctx context.Context) (*websocket.Conn, error) {
		conn, resp, err := dialer.DialContext(ctx, cfg.URL, header)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil && resp != nil {
			return nil, fmt.Errorf("dial %s: %w", cfg.URL, &HandshakeError{StatusCode: resp.StatusCode, err: err})
		}
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", cfg.URL, err)
		}
		if conn.Subprotocol() != "sip" {
			_ = conn.Close()
			return nil, fmt.Errorf("dial %s: %w", cfg.URL, errNoSubprotocol)
		}
		return conn, nil
	}
	conn, err := u.dial(ctx)
	if err != nil {
		return nil, err
	}
	u.conn = conn
	u.connDone = make(chan struct{})
	go u.readLoop(conn, u.connDone)
	return u, nil
}

// Incoming delivers INVITEs received; the UA has already sent 100 Trying.
// It is closed when the WebSocket is gone.
func (u *UA) Incoming() <-chan *Call { return u.incoming }

// Unmatched delivers raw frames that matched no transaction or dialog (and
// frames that did not parse), for negative tests. Closed when the WebSocket is gone.
func (u *UA) Unmatched() <-chan []byte { return u.unmatched }

// Send writes a raw text frame, for negative tests.
func (u *UA) Send(raw []byte) error {
	if err := u.writeFrame(raw); err != nil {
		return fmt.Errorf("send raw frame: %w", err)
	}
	return nil
}

// Closed reports the WebSocket close frame the peer sent, if any.
func (u *UA) Closed() (code int, reason string, closed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.peerClose == nil {
		return 0, "", false
	}
	return u.peerClose.Code, u.peerClose.Text, true
}

// Close closes the WebSocket, every call and PeerConnection, and waits for
// every goroutine the UA started. It sends no BYE: to the gateway it looks
// like a browser tab being closed.
func (u *UA) Close() error {
	u.closeOnce.Do(func() {
		u.mu.Lock()
		u.closing = true
		calls := make([]*Call, 0, len(u.calls))
		for _, c := range u.calls {
			calls = append(calls, c)
		}
		dropped := u.dropped != nil
		u.mu.Unlock()
		if dropped {
			// No reader runs until a Redial: nothing else will finish.
			u.finish()
		} else {
			u.writeMu.Lock()
			_ = u.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			err := u.conn.Close()
			u.writeMu.Unlock()
			if err != nil {
				u.closeErr = fmt.Errorf("close websocket: %w", err)
			}
		}
		<-u.readerDone
		for _, c := range calls {
			c.end("closed")
			c.media.close()
		}
		u.teardown.Wait()
	})
	return u.closeErr
}

// readLoop is the only reader of conn. The last connection's reader is
// the only sender on incoming, messages and unmatched, so it closes them.
func (u *UA) readLoop(conn *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, data, err := conn.ReadMessage()
		u.mu.Lock()
		left := u.abandoned == conn
		u.mu.Unlock()
		if left {
			if err == nil {
				continue // the device has left this connection
			}
			var ce *websocket.CloseError
			errors.As(err, &ce)
			u.abandonedClose <- ce
			conn.Close()
			return
		}
		if err != nil {
			u.mu.Lock()
			closing, dropped := u.closing, u.dropped == conn
			u.mu.Unlock()
			if dropped {
				return // Drop's doing: the calls wait for Redial
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				u.mu.Lock()
				u.peerClose = ce
				u.mu.Unlock()
				u.log.Debug("websocket closed by peer", zap.Int("status", ce.Code), zap.String("reason", ce.Text))
			}
			if !closing { // after Close, Close ends the calls itself
				u.endAllCalls("ws closed")
			}
			u.finish()
			return
		}
		u.handleFrame(data)
	}
}

// finish marks the UA's connection gone for good.
func (u *UA) finish() {
	u.finishOnce.Do(func() {
		close(u.incoming)
		close(u.messages)
		close(u.unmatched)
		close(u.readerDone)
	})
}

func (u *UA) handleFrame(data []byte) {
	// RFC 5626 CRLF keepalives carry no message.
	if len(bytes.TrimSpace(data)) == 0 {
		return
	}
	msg, err := sip.ParseMessage(data)
	if err != nil {
		u.log.Warn("unparsable frame", zap.Error(err))
		u.pushUnmatched(data)
		return
	}
	switch m := msg.(type) {
	case *sip.Response:
		u.handleResponse(m, data)
	case *sip.Request:
		u.handleRequest(m, data)
	}
}

func (u *UA) handleResponse(res *sip.Response, raw []byte) {
	u.log.Debug("sip response", zap.Int("status", res.StatusCode), zap.String("sip_call_id", callIDOf(res)))
	via, cseq := res.Via(), res.CSeq()
	if via == nil || cseq == nil {
		u.pushUnmatched(raw)
		return
	}
	branch, _ := via.Params.Get("branch")
	u.mu.Lock()
	onResponse := u.txs[txKey(branch, cseq.MethodName)]
	u.mu.Unlock()
	if onResponse == nil {
		u.pushUnmatched(raw)
		return
	}
	onResponse(res)
}

func (u *UA) pushUnmatched(raw []byte) {
	select {
	case u.unmatched <- raw:
	default:
		u.log.Warn("unmatched frame dropped: channel full")
	}
}

func (u *UA) writeMessage(msg interface{ String() string }) error {
	return u.writeFrame([]byte(msg.String()))
}

func (u *UA) writeFrame(data []byte) error {
	u.writeMu.Lock()
	defer u.writeMu.Unlock()
	if err := u.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := u.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

func (u *UA) addCall(c *Call) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return errClosed
	}
	u.calls[c.callID()] = c
	return nil
}

func (u *UA) findCall(callID string) *Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[callID]
}

func (u *UA) forgetCall(c *Call) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.calls[c.callID()] == c {
		delete(u.calls, c.callID())
	}
}

func (u *UA) endAllCalls(reason string) {
	u.mu.Lock()
	calls := make([]*Call, 0, len(u.calls))
	for _, c := range u.calls {
		calls = append(calls, c)
	}
	u.mu.Unlock()
	for _, c := range calls {
		c.end(reason)
	}
}

// goTeardown runs f in a goroutine Close waits for. Once Close has begun it
// does nothing: Close then tears down every call it saw itself.
func (u *UA) goTeardown(f func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return
	}
	u.teardown.Add(1)
	go func() {
		defer u.teardown.Done()
		f()
	}()
}
