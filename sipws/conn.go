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

// Conn is one SIP-over-WebSocket connection. One reader goroutine runs for
// its whole life and only reads frames; the frames are parsed and handed on,
// in order, by a handler goroutine that exists only while there are frames,
// and writes likewise by a writer goroutine that exists only while there is
// something to send; pings come from a timer. The reader's stack so stays as
// shallow as a read: an idle registered browser costs the gateway a parked
// goroutine of a few KiB and a small read buffer, and tens of thousands of
// them fit in a node.
type Conn struct {
	srv       *Server
	ws        *websocket.Conn
	flow      string
	remote    net.Addr
	origin    string
	transport string
	opened    time.Time

	mu     sync.Mutex
	writer serialQueue // serialized SIP messages, written in order
	inbox  serialQueue // frames read, handled in order
	ping   *time.Timer

	closing    chan struct{} // closed by the first Close
	closeOnce  sync.Once
	closeCode  int    // set once, before closing is closed
	closeWhy   string // likewise
	peerClosed atomic.Bool
	readerDone chan struct{}
	finished   chan struct{} // our close frame is out and the socket cut
	done       chan struct{}
}

func newConn(s *Server, ws *websocket.Conn, r *http.Request) *Conn {
	transport := "WS"
	if r.TLS != nil || s.tlsConfig != nil {
		transport = "WSS"
	}
	c := &Conn{
		srv:        s,
		ws:         ws,
		flow:       newFlow(),
		remote:     ws.RemoteAddr(),
		origin:     r.Header.Get("Origin"),
		transport:  transport,
		opened:     time.Now(),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		finished:   make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.writer.init(&c.mu, c.write)
	c.inbox.init(&c.mu, func(data []byte) bool { c.handleFrame(data); return true })
	return c
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

// logFields name the connection on a log line; built only when logging.
func (c *Conn) logFields(extra ...zap.Field) []zap.Field {
	return append([]zap.Field{zap.String("flow", c.flow), zap.Stringer("remote_addr", c.remote)}, extra...)
}

// WriteMessage queues msg for the writer and never blocks. It returns
// ErrClosed once the connection is closing. When the queue is full the peer
// is too slow: the connection is closed with 1008 and ErrSendQueueFull
// returned.
func (c *Conn) WriteMessage(msg sip.Message) error {
	if msg == nil {
		return fmt.Errorf("write to flow %s: %w", c.flow, errNilMessage)
	}
	// Serialize now, on the caller's goroutine, so the caller may keep
	// changing msg once this returns.
	data := []byte(msg.String())
	if err := c.enqueue(data); err != nil {
		return fmt.Errorf("write to flow %s: %w", c.flow, err)
	}
	if ce := c.srv.log.Check(zap.DebugLevel, "sip out"); ce != nil {
		ce.Write(c.logFields(messageFields(msg)...)...)
	}
	return nil
}

// enqueue adds data to what the writer sends.
func (c *Conn) enqueue(data []byte) error {
	c.mu.Lock()
	select {
	case <-c.closing:
		c.mu.Unlock()
		return ErrClosed
	default:
	}
	if len(c.writer.items) >= sendQueueSize {
		c.mu.Unlock()
		c.Close(websocket.ClosePolicyViolation, "send queue full")
		return ErrSendQueueFull
	}
	c.writer.push(data)
	c.mu.Unlock()
	return nil
}

// write is the writer's step: a failed write closes the connection and
// drops what is queued.
func (c *Conn) write(data []byte) bool {
	if err := c.writeText(data); err != nil {
		c.Close(websocket.CloseAbnormalClosure, "write: "+err.Error())
		return false
	}
	return true
}

// Close starts closing the connection with a close frame carrying code and
// reason (cut to fit). Only the first call counts; it does not wait.
func (c *Conn) Close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closeCode = code
		c.closeWhy = truncateReason(reason)
		close(c.closing)
		c.mu.Unlock()
		go c.finish()
	})
}

// abort cuts the socket without waiting for the peer; used when Shutdown's
// context ends.
func (c *Conn) abort() {
	c.Close(websocket.CloseGoingAway, "going away")
	_ = c.ws.Close()
}

// start begins serving the connection: the reader goroutine and the ping
// timer. The server's WaitGroup counts the reader until ConnClosed is done.
func (c *Conn) start() {
	c.srv.log.Info("ws connection open", c.logFields(zap.String("origin", c.origin), zap.String("transport", c.transport))...)
	c.mu.Lock()
	c.ping = time.AfterFunc(c.srv.cfg.PingInterval, c.sendPing)
	c.mu.Unlock()
	go c.run()
}

// sendPing is the ping timer's function; WriteControl may run alongside the
// writer (gorilla allows it).
func (c *Conn) sendPing() {
	select {
	case <-c.closing:
		return
	default:
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
		c.Close(websocket.CloseAbnormalClosure, "ping: "+err.Error())
		return
	}
	c.mu.Lock()
	c.ping.Reset(c.srv.cfg.PingInterval)
	c.mu.Unlock()
}

// run reads until the connection closes, then removes it from the registry
// and tells the Handler.
func (c *Conn) run() {
	defer c.srv.wg.Done()
	code, reason := c.readLoop()
	// Every frame read is handled before ConnClosed.
	c.mu.Lock()
	c.inbox.waitIdle()
	c.mu.Unlock()
	close(c.readerDone)
	c.Close(code, reason)
	<-c.finished
	c.mu.Lock()
	c.ping.Stop()
	c.mu.Unlock()

	c.srv.unregister(c)
	close(c.done)
	c.srv.log.Info("ws connection closed", c.logFields(zap.Int("code", c.closeCode), zap.String("reason", c.closeWhy),
		zap.Duration("dur", time.Since(c.opened)))...)
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
		c.deliver(data)
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

// deliver queues a frame for the handler. A browser that sends faster than
// the gateway handles waits here: the reader stops reading and TCP pushes
// back.
func (c *Conn) deliver(data []byte) {
	c.mu.Lock()
	for len(c.inbox.items) >= inboxLimit {
		c.inbox.idle.Wait()
	}
	c.inbox.push(data)
	c.mu.Unlock()
}

// handleFrame acts on one WebSocket message: one SIP message (RFC 7118
// section 5); text and binary frames alike, invalid UTF-8 included.
func (c *Conn) handleFrame(data []byte) {
	res := decodeFrame(c.srv.parser, data)
	switch res.action {
	case actionDeliver:
		res.msg.SetSource(c.remote.String())
		res.msg.SetTransport(c.transport)
		if ce := c.srv.log.Check(zap.DebugLevel, "sip in"); ce != nil {
			ce.Write(c.logFields(messageFields(res.msg)...)...)
		}
		c.srv.handler.HandleMessage(c, res.msg)
	case actionReject:
		c.srv.log.Warn("bad SIP request answered 400", c.logFields(zap.Error(res.err))...)
		if err := c.enqueue(res.reply); err != nil {
			c.srv.log.Warn("send 400", c.logFields(zap.Error(err))...)
		}
	case actionDrop:
		c.srv.log.Warn("bad SIP ACK dropped", c.logFields(zap.Error(res.err))...)
	case actionClose:
		c.srv.log.Warn("bad SIP message, closing", c.logFields(zap.Error(res.err))...)
		c.Close(res.closeCode, res.closeReason)
	case actionIgnore:
	}
}

func (c *Conn) writeText(data []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// finish waits for the writer to send what was queued (unless the close is
// for a slow or broken peer), sends our close frame and waits briefly for the
// peer's (RFC 6455 section 7.1.1) before the socket is cut.
func (c *Conn) finish() {
	defer close(c.finished)
	code := c.closeCode
	c.mu.Lock()
	if code == websocket.ClosePolicyViolation || code == websocket.CloseAbnormalClosure {
		c.writer.items = nil
	}
	c.writer.waitIdle()
	c.mu.Unlock()
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
