package sipws

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Conn is one SIP-over-WebSocket connection. Its reader runs on the HTTP
// handler goroutine that upgraded it; its writer goroutine owns every write.
type Conn struct {
	srv       *Server
	log       *zap.Logger
	ws        *websocket.Conn
	flow      string
	remote    net.Addr
	origin    string
	transport string
	opened    time.Time

	send       chan []byte   // serialized SIP messages for the writer
	closing    chan struct{} // closed by the first Close
	closeOnce  sync.Once
	closeCode  int    // set once, before closing is closed
	closeWhy   string // likewise
	peerClosed atomic.Bool
	readerDone chan struct{}
	done       chan struct{}
}

func newConn(s *Server, ws *websocket.Conn, r *http.Request) *Conn {
	transport := "WS"
	if r.TLS != nil || s.tlsConfig != nil {
		transport = "WSS"
	}
	flow := newFlow()
	return &Conn{
		srv:        s,
		log:        s.log.With(zap.String("flow", flow), zap.Stringer("remote_addr", ws.RemoteAddr())),
		ws:         ws,
		flow:       flow,
		remote:     ws.RemoteAddr(),
		origin:     r.Header.Get("Origin"),
		transport:  transport,
		opened:     time.Now(),
		send:       make(chan []byte, sendQueueSize),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// Flow is the connection's token: random, stable for its life, [a-z0-9] only,
// so it can be used as a SIP URI user part or parameter.
func (c *Conn) Flow() string { return c.flow }

// RemoteAddr is the browser's address as seen by the gateway.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Transport is "WS" or "WSS".
func (c *Conn) Transport() string { return c.transport }

// Origin is the Origin header of the upgrade request.
func (c *Conn) Origin() string { return c.origin }

// Done is closed once the connection is closed and gone from the registry.
func (c *Conn) Done() <-chan struct{} { return c.done }

// WriteMessage queues msg for the writer and never blocks. It returns
// ErrClosed once the connection is closing. When the queue is full the peer
// is too slow: the connection is closed with 1008 and ErrSendQueueFull
// returned.
func (c *Conn) WriteMessage(msg sip.Message) error {
	if msg == nil {
		return fmt.Errorf("write to flow %s: %w", c.flow, errNilMessage)
	}
	select {
	case <-c.closing:
		return fmt.Errorf("write to flow %s: %w", c.flow, ErrClosed)
	default:
	}
	// Serialize now, on the caller's goroutine, so the caller may keep
	// changing msg once this returns.
	data := []byte(msg.String())
	if err := c.enqueue(data); err != nil {
		return fmt.Errorf("write to flow %s: %w", c.flow, err)
	}
	if ce := c.log.Check(zap.DebugLevel, "sip out"); ce != nil {
		ce.Write(messageFields(msg)...)
	}
	return nil
}

func (c *Conn) enqueue(data []byte) error {
	select {
	case c.send <- data:
		return nil
	default:
		c.Close(websocket.ClosePolicyViolation, "send queue full")
		return ErrSendQueueFull
	}
}

// Close starts closing the connection with a close frame carrying code and
// reason (cut to fit). Only the first call counts; it does not wait.
func (c *Conn) Close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode = code
		c.closeWhy = truncateReason(reason)
		close(c.closing)
	})
}

// abort cuts the socket without waiting for the peer; used when Shutdown's
// context ends.
func (c *Conn) abort() {
	c.Close(websocket.CloseGoingAway, "going away")
	_ = c.ws.Close()
}

// run serves the connection until it closes, then removes it from the
// registry and tells the Handler. It runs on the upgrading goroutine.
func (c *Conn) run() {
	c.log.Info("ws connection open", zap.String("origin", c.origin), zap.String("transport", c.transport))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()

	code, reason := c.readLoop()
	close(c.readerDone)
	c.Close(code, reason)
	<-writerDone
	_ = c.ws.Close()

	c.srv.unregister(c)
	close(c.done)
	c.log.Info("ws connection closed", zap.Int("code", c.closeCode), zap.String("reason", c.closeWhy),
		zap.Duration("dur", time.Since(c.opened)))
	c.srv.handler.ConnClosed(c)
}

// readLoop reads frames until the connection fails or the peer closes it,
// and returns the close code and reason to use if nobody closed it yet.
func (c *Conn) readLoop() (int, string) {
	c.ws.SetReadLimit(int64(c.srv.cfg.MaxMessageBytes))
	c.extendReadDeadline()
	c.ws.SetPongHandler(func(string) error {
		c.extendReadDeadline()
		return nil
	})
	answerPing := c.ws.PingHandler()
	c.ws.SetPingHandler(func(data string) error {
		c.extendReadDeadline()
		return answerPing(data)
	})

	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return c.readFailure(err)
		}
		c.extendReadDeadline()
		select {
		case <-c.closing:
			continue // RFC 6455 section 5.5.1: data after our close is discarded
		default:
		}
		c.handleFrame(data)
	}
}

func (c *Conn) extendReadDeadline() {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
}

// readFailure maps a read error to a close code and reason.
func (c *Conn) readFailure(err error) (int, string) {
	var closeErr *websocket.CloseError
	var netErr net.Error
	switch {
	case errors.As(err, &closeErr):
		// gorilla has already answered the peer's close frame.
		c.peerClosed.Store(true)
		return closeErr.Code, "peer closed: " + closeErr.Text
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent 1009.
		return websocket.CloseMessageTooBig, "message too big"
	case errors.As(err, &netErr) && netErr.Timeout():
		return websocket.CloseNormalClosure, "idle timeout"
	default:
		return websocket.CloseAbnormalClosure, "read: " + err.Error()
	}
}

// handleFrame acts on one WebSocket message: one SIP message (RFC 7118
// section 5); text and binary frames alike, invalid UTF-8 included.
func (c *Conn) handleFrame(data []byte) {
	res := decodeFrame(c.srv.parser, data)
	switch res.action {
	case actionDeliver:
		res.msg.SetSource(c.remote.String())
		res.msg.SetTransport(c.transport)
		if ce := c.log.Check(zap.DebugLevel, "sip in"); ce != nil {
			ce.Write(messageFields(res.msg)...)
		}
		c.srv.handler.HandleMessage(c, res.msg)
	case actionReject:
		c.log.Warn("bad SIP request answered 400", zap.Error(res.err))
		if err := c.enqueue(res.reply); err != nil {
			c.log.Warn("send 400", zap.Error(err))
		}
	case actionDrop:
		c.log.Warn("bad SIP ACK dropped", zap.Error(res.err))
	case actionClose:
		c.log.Warn("bad SIP message, closing", zap.Error(res.err))
		c.Close(res.closeCode, res.closeReason)
	case actionIgnore:
	}
}

// writeLoop owns every write on the connection: SIP messages, pings and the
// final close frame (gorilla's examples/chat pattern).
func (c *Conn) writeLoop() {
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case data := <-c.send:
			if err := c.writeText(data); err != nil {
				c.Close(websocket.CloseAbnormalClosure, "write: "+err.Error())
			}
		case <-ping.C:
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
			if err != nil {
				c.Close(websocket.CloseAbnormalClosure, "ping: "+err.Error())
			}
		case <-c.closing:
			c.finish()
			return
		}
	}
}

func (c *Conn) writeText(data []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// finish flushes what is queued, sends our close frame and waits briefly
// for the peer's (RFC 6455 section 7.1.1) before the socket is cut.
func (c *Conn) finish() {
	code := c.closeCode
	if code != websocket.ClosePolicyViolation && code != websocket.CloseAbnormalClosure {
		c.flush()
	}
	// 1006 must never be sent (RFC 6455 section 7.4.1); after the peer's
	// close frame gorilla has answered already.
	if code != websocket.CloseAbnormalClosure && !c.peerClosed.Load() {
		msg := websocket.FormatCloseMessage(code, c.closeWhy)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
	}
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-c.readerDone:
	case <-grace.C:
	}
	_ = c.ws.Close()
}

// flush writes what was queued before the close, stopping at the first error.
func (c *Conn) flush() {
	for {
		select {
		case data := <-c.send:
			if err := c.writeText(data); err != nil {
				return
			}
		default:
			return
		}
	}
}

// messageFields are the log fields describing one SIP message.
func messageFields(msg sip.Message) []zap.Field {
	fields := make([]zap.Field, 0, 3)
	switch m := msg.(type) {
	case *sip.Request:
		fields = append(fields, zap.String("method", string(m.Method)))
	case *sip.Response:
		fields = append(fields, zap.Int("status", m.StatusCode))
	}
	if id := msg.CallID(); id != nil {
		fields = append(fields, zap.String("sip_call_id", id.Value()))
	}
	if cseq := msg.CSeq(); cseq != nil {
		fields = append(fields, zap.Uint32("cseq", cseq.SeqNo))
	}
	return fields
}
