package sipws

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/internal/serial"
	"github.com/imsgate/imsgate/internal/siptap"
)

// Conn is one SIP-over-WebSocket connection. A reader goroutine only reads
// frames; the frames are parsed and handed on, in order, by a handler
// goroutine that exists only while there are frames, and writes likewise by
// a writer goroutine that exists only while there is something to send;
// pings come from a timer. When the browser falls silent and nothing it sent
// is left in the read buffer, the reader parks the connection with the
// server's idle watcher and ends (idle_linux.go): an idle registered browser
// then costs the gateway no goroutine at all, only its structures and a
// small read buffer, so a node holds a hundred thousand of them. WSS parks
// too, once crypto/tls is seen to hold nothing (tlsIdle).
type Conn struct {
	srv       *Server
	ws        *websocket.Conn
	br        *bufio.Reader // gorilla's read buffer (upgrade.go), nil if not ours
	tls       *tls.Conn     // under gorilla for WSS; nil for WS
	fd        int           // the TCP socket, for the idle watcher; -1: never park
	flow      string
	remote    net.Addr
	ip        netip.Addr // remote's, the key of its refusals
	origin    string
	transport string
	opened    time.Time
	principal any         // what Admission admitted it as
	rate      requestRate // used by the handler goroutine only

	mu     sync.Mutex
	writer serial.Queue[[]byte] // serialized SIP messages, written in order
	inbox  serial.Queue[[]byte] // frames read, handled in order
	ping   *time.Timer

	parked   bool         // no reader: the idle watcher resumes it (guarded by mu)
	deadline atomic.Int64 // read deadline, unix ns, for the ping timer while parked

	closing    chan struct{} // closed by the first Close
	closeOnce  sync.Once
	closeCode  int    // set once, before closing is closed
	closeWhy   string // likewise
	peerClosed atomic.Bool
	readerDone chan struct{}
	finished   chan struct{} // our close frame is out and the socket cut
	done       chan struct{}
}

func newConn(s *Server, ws *websocket.Conn, br *bufio.Reader, r *http.Request) *Conn {
	transport := "WS"
	if r.TLS != nil || terminatedTLS(ws.UnderlyingConn()) {
		transport = "WSS"
	}
	c := &Conn{
		srv:        s,
		ws:         ws,
		br:         br,
		fd:         -1,
		flow:       newFlow(),
		remote:     ws.RemoteAddr(),
		ip:         addrIP(ws.RemoteAddr()),
		origin:     r.Header.Get("Origin"),
		transport:  transport,
		opened:     time.Now(),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		finished:   make(chan struct{}),
		done:       make(chan struct{}),
		rate:       requestRate{lim: newRate(s.limits.RequestsPerConn)},
	}
	netConn := ws.UnderlyingConn()
	if tc, ok := netConn.(*tls.Conn); ok {
		c.tls = tc
		netConn = tc.NetConn()
	}
	if br != nil {
		c.fd = socketFD(socketConn(netConn))
	}
	c.writer.Init(&c.mu, c.write, nil)
	c.inbox.Init(&c.mu, func(data []byte) bool { c.handleFrame(data); return true }, nil)
	return c
}

// terminatedTLS tells whether c is TLS that the listener handing it over
// did the handshake of (the shared port of internal/edge).
func terminatedTLS(c net.Conn) bool {
	if tc, ok := c.(*trackedConn); ok {
		c = tc.Conn
	}
	_, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	return ok
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
	if c.writer.Len() >= sendQueueSize {
		c.mu.Unlock()
		c.Close(websocket.ClosePolicyViolation, "send queue full")
		return ErrSendQueueFull
	}
	c.writer.Push(data)
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
	if len(data) > len(keepalivePong) {
		c.tapped(siptap.Out, data)
	}
	return true
}

// tapped shows a SIP message of the connection to the server's tap.
func (c *Conn) tapped(dir siptap.Direction, data []byte) {
	if c.srv.tap == nil {
		return
	}
	c.srv.tap.Emit(&siptap.Message{At: time.Now(), Leg: siptap.LegWeb, Dir: dir, Transport: c.transport,
		Local: siptap.NetAddrPort(c.ws.LocalAddr()), Remote: siptap.NetAddrPort(c.remote), Raw: data})
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
	c.cut()
}

// cut closes the socket, first taking it from the idle watcher (its
// descriptor number is reused once closed) and giving a parked connection
// its reader back, which then sees the closed socket and ends.
func (c *Conn) cut() {
	if c.fd >= 0 {
		if w := c.srv.idleWatcher(); w != nil {
			w.forget(c)
		}
	}
	_ = c.ws.Close()
	go c.resume()
}

// start begins serving the connection: the reader goroutine and the ping
// timer. The server's WaitGroup counts the connection until ConnClosed is
// done.
func (c *Conn) start() {
	c.srv.log.Info("ws connection open", c.logFields(zap.String("origin", c.origin), zap.String("transport", c.transport))...)
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
	c.mu.Lock()
	c.ping = time.AfterFunc(c.srv.cfg.PingInterval, c.sendPing)
	c.mu.Unlock()
	go c.read(false)
}

// sendPing is the ping timer's function; WriteControl may run alongside the
// writer (gorilla allows it). A parked connection past its read deadline
// gets its reader back, whose read then times out.
func (c *Conn) sendPing() {
	select {
	case <-c.closing:
		return
	default:
	}
	if time.Now().UnixNano() > c.deadline.Load() {
		go c.resume()
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
		c.Close(websocket.CloseAbnormalClosure, "ping: "+err.Error())
		return
	}
	c.mu.Lock()
	c.ping.Reset(c.srv.cfg.PingInterval)
	c.mu.Unlock()
}

// read is the reader goroutine: it reads frames until the connection ends,
// then ends it, or until it parks the connection, then returns. resumed
// says the idle watcher saw the socket readable: read before parking again.
func (c *Conn) read(resumed bool) {
	code, reason, parked := c.readLoop(resumed)
	if !parked {
		c.end(code, reason)
	}
}

// resume gives a parked connection its reader again; it does nothing if
// the connection is not parked (another resume won, or it never parked).
func (c *Conn) resume() {
	c.mu.Lock()
	if !c.parked {
		c.mu.Unlock()
		return
	}
	c.parked = false
	c.mu.Unlock()
	c.read(true)
}

// end removes the connection from the registry once every frame read is
// handled and our close is done, and tells the Handler.
func (c *Conn) end(code int, reason string) {
	defer c.srv.wg.Done()
	// Every frame read is handled before ConnClosed.
	c.mu.Lock()
	c.inbox.WaitIdle()
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
// and returns the close code and reason to use if nobody closed it yet —
// or parked, when the browser fell silent with nothing left buffered.
func (c *Conn) readLoop(resumed bool) (code int, reason string, parked bool) {
	for {
		if !resumed && c.park() {
			return 0, "", true
		}
		resumed = false
		if c.skipPong() {
			continue
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			code, reason := c.readFailure(err)
			return code, reason, false
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

// park hands the connection to the idle watcher when it is silent: a
// socket the watcher can watch, nothing buffered, not closing (a closing
// connection reads on, for the peer's close frame). After a true return
// the reader must not touch the connection: the watcher may resume it at
// once.
func (c *Conn) park() bool {
	if c.fd < 0 || c.br.Buffered() > 0 {
		return false
	}
	if c.tls != nil && !c.tlsIdle() {
		return false
	}
	w := c.srv.idleWatcher()
	if w == nil {
		return false
	}
	// mu is held until the watcher has the socket, so no Close (and so no
	// cut closing the descriptor) and no resume comes in between.
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closing:
		return false
	default:
	}
	if err := w.arm(c); err != nil {
		return false
	}
	c.parked = true
	return true
}

// tlsIdle reports whether crypto/tls holds no plaintext and no complete
// record, so that epoll on the raw socket can stand in for the reader: the
// next bytes that matter are then still to come from the kernel. It asks
// by reading with a read deadline in the past. Checked against crypto/tls
// of Go 1.26 (conn.go):
//   - Read serves buffered plaintext (c.input) first, and decrypts a
//     complete record already in c.rawInput without touching the socket;
//     either way data lands in our bufio.Reader and we go on reading.
//   - Otherwise it reads the socket, which fails at once with
//     os.ErrDeadlineExceeded before any syscall, so nothing is taken from
//     the kernel (level-triggered epoll sees those bytes) and no partial
//     record is lost (it stays in c.rawInput).
//   - readRecordOrCCS makes an error permanent (c.in.err) only when it is
//     not a net.Error with Temporary() true; the deadline error is
//     temporary, so the TLS state is intact and the next Read goes on.
//
// bufio keeps the error only until Peek returns it (readErr clears it).
// Any other error (close_notify, a bad record) is permanent in crypto/tls:
// the reader then meets it again in gorilla and ends the connection.
func (c *Conn) tlsIdle() bool {
	_ = c.tls.SetReadDeadline(time.Unix(1, 0))
	_, err := c.br.Peek(1)
	_ = c.tls.SetReadDeadline(time.Unix(0, c.deadline.Load()))
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// skipPong takes a pong frame (RFC 6455 section 5.5.3) off the read
// buffer when the next frame is one, so the reader can park again after
// it: gorilla would answer it inside ReadMessage and then wait there for
// the next data frame. It is called between messages only, where gorilla
// holds no partial frame; it may wait for the frame's bytes like any read.
func (c *Conn) skipPong() bool {
	if c.br == nil {
		return false
	}
	n := pongFrameLen(c.br)
	if n == 0 {
		return false
	}
	_, _ = c.br.Discard(n)
	c.extendReadDeadline()
	return true
}

// pongFrameLen is the length of the pong frame at the head of br, or 0 when
// the next frame is anything else — a pong that is not a plain masked
// client frame included: gorilla then reads it and judges it. It consumes
// nothing.
func pongFrameLen(br *bufio.Reader) int {
	const pongFin, masked, maxControl = 0x8A, 0x80, 125
	h, err := br.Peek(2)
	if err != nil || h[0] != pongFin || h[1]&masked == 0 || int(h[1]&^masked) > maxControl {
		return 0
	}
	n := 2 + 4 + int(h[1]&^masked) // header, masking key, payload
	if _, err := br.Peek(n); err != nil {
		return 0
	}
	return n
}

func (c *Conn) extendReadDeadline() {
	d := time.Now().Add(c.srv.cfg.IdleTimeout)
	c.deadline.Store(d.UnixNano())
	_ = c.ws.SetReadDeadline(d)
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
	c.inbox.WaitBelow(inboxLimit)
	c.inbox.Push(data)
	c.mu.Unlock()
}

// handleFrame acts on one WebSocket message: one SIP message (RFC 7118
// section 5); text and binary frames alike, invalid UTF-8 included.
func (c *Conn) handleFrame(data []byte) {
	select {
	case <-c.closing:
		// Read before the close but after the frame that caused it (a
		// flood, garbage): nothing more from this peer is acted on.
		return
	default:
	}
	res := intakeFrame(&c.rate, c.srv.parser, c.srv.frameLimits, data, c.srv.now())
	if res.action == actionDeliver || res.action == actionReject {
		c.tapped(siptap.In, data)
	}
	switch res.action {
	case actionDeliver:
		res.msg.SetSource(c.remote.String())
		res.msg.SetTransport(c.transport)
		if ce := c.srv.log.Check(zap.DebugLevel, "sip in"); ce != nil {
			ce.Write(c.logFields(messageFields(res.msg)...)...)
		}
		c.srv.handler.HandleMessage(c, res.msg)
	case actionReject:
		c.refused(res, "SIP request refused")
		if err := c.enqueue(res.reply); err != nil {
			c.srv.log.Debug("refusal not sent", c.logFields(zap.Error(err))...)
		}
	case actionDrop:
		c.refused(res, "SIP message dropped")
	case actionClose:
		c.refused(res, "SIP message refused, closing")
		c.Close(res.closeCode, res.closeReason)
	case actionKeepalive:
		// Bounded like any reply: a peer that pings and never reads fills
		// the send queue and is closed.
		if err := c.enqueue(keepalivePong); err != nil {
			c.srv.log.Debug("keepalive pong not sent", c.logFields(zap.Error(err))...)
		}
	case actionIgnore:
	}
}

// refused counts and logs a refused frame, once per source and kind and
// log window at Warn.
func (c *Conn) refused(res frameResult, msg string) {
	c.srv.refuse(res.refusal, c.ip, msg, c.logFields(zap.Error(res.err))...)
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
		c.writer.Drop()
	}
	c.writer.WaitIdle()
	c.mu.Unlock()
	// 1006 must never be sent (RFC 6455 section 7.4.1); after the peer's
	// close frame gorilla has answered already.
	if code != websocket.CloseAbnormalClosure && !c.peerClosed.Load() {
		msg := websocket.FormatCloseMessage(code, c.closeWhy)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
	}
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	// A parked connection has no reader to see the peer's close frame.
	go c.resume()
	select {
	case <-c.readerDone:
	case <-grace.C:
	}
	c.cut()
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
