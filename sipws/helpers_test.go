package sipws

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/imsgate/imsgate/configs"
)

// waitFor bounds every wait in these tests; it is never a timing assertion.
const waitFor = 5 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// received is one HandleMessage call.
type received struct {
	conn *Conn
	msg  sip.Message
}

// closedView is what the registry looked like while ConnClosed ran.
type closedView struct {
	conn     *Conn
	found    bool
	len      int
	doneShut bool
}

// recordingHandler records calls; onMessage, when set, runs inside
// HandleMessage on the reader goroutine.
type recordingHandler struct {
	srv       func() *Server
	onMessage func(c *Conn, msg sip.Message)
	messages  chan received
	closed    chan closedView
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{
		messages: make(chan received, 16),
		closed:   make(chan closedView, 128), // TestIdleWSSConnectionsPark closes 64 at once
	}
}

func (h *recordingHandler) HandleMessage(c *Conn, msg sip.Message) {
	if h.onMessage != nil {
		h.onMessage(c, msg)
	}
	h.messages <- received{conn: c, msg: msg}
}

func (h *recordingHandler) ConnClosed(c *Conn) {
	view := closedView{conn: c}
	if h.srv != nil {
		_, view.found = h.srv().Lookup(c.Flow())
		view.len = h.srv().Len()
	}
	select {
	case <-c.Done():
		view.doneShut = true
	default:
	}
	h.closed <- view
}

func (h *recordingHandler) nextMessage(t *testing.T) received {
	t.Helper()
	select {
	case r := <-h.messages:
		return r
	case <-time.After(waitFor):
		t.Fatal("no message reached the handler")
		return received{}
	}
}

func (h *recordingHandler) nextClosed(t *testing.T) closedView {
	t.Helper()
	select {
	case v := <-h.closed:
		return v
	case <-time.After(waitFor):
		t.Fatal("ConnClosed was not called")
		return closedView{}
	}
}

func testConfig() configs.WS {
	cfg := configs.Default().WS
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// testServer is a Server serving on 127.0.0.1:0; with a certificate in its
// config it serves WSS (url) and plain WS (wsURL) at once.
type testServer struct {
	srv     *Server
	handler *recordingHandler
	url     string // ws:// or wss://
	wsURL   string // plain ws://, always
	served  chan error
	serving int // how many Serve calls to wait for
}

func startServer(t *testing.T, cfg configs.WS, opts ...Option) *testServer {
	t.Helper()
	return startServerWithLog(t, cfg, zaptest.NewLogger(t), opts...)
}

func startServerWithLog(t *testing.T, cfg configs.WS, log *zap.Logger, opts ...Option) *testServer {
	t.Helper()
	h := newRecordingHandler()
	return serveHandler(t, cfg, h, h, log, opts...)
}

// serveHandler starts a Server whose Handler h records into rec (h is rec,
// or wraps it). Limits are roomy unless opts set others.
func serveHandler(t *testing.T, cfg configs.WS, h Handler, rec *recordingHandler, log *zap.Logger, opts ...Option) *testServer {
	t.Helper()
	opts = append([]Option{WithLimits(roomyLimits())}, opts...)
	srv, err := NewServer(cfg, h, log, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	rec.srv = func() *Server { return srv }
	ts := &testServer{srv: srv, handler: rec, served: make(chan error, 3)}
	ts.wsURL = "ws://" + ts.listen(t, "127.0.0.1:0", srv.Serve)
	ts.url = ts.wsURL
	if cfg.TLSCert != "" {
		ts.url = "wss://" + ts.listen(t, "127.0.0.1:0", srv.ServeTLS)
	}
	t.Cleanup(func() { ts.shutdown(t) })
	return ts
}

// listen serves on a fresh listener at addr and returns its address.
func (ts *testServer) listen(t *testing.T, addr string, serve func(net.Listener) error) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.serving++
	go func() { ts.served <- serve(l) }()
	return l.Addr().String()
}

// shutdown stops the server and waits for Serve to return; safe to call twice.
func (ts *testServer) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	for ; ts.serving > 0; ts.serving-- {
		select {
		case err := <-ts.served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(waitFor):
			t.Error("Serve did not return after Shutdown")
			return
		}
	}
}

// roomyLimits are limits no test meets unless it means to: tests open
// many connections from one address at once. A test of a limit passes its
// own WithLimits after them.
func roomyLimits() configs.Limits {
	l := configs.DefaultLimits()
	l.ConnsPerIP = 100000
	l.UpgradesPerIP = 100000
	l.RequestsPerConn = 100000
	return l
}

// fakeClock is the limiters' clock in tests: it moves only when told, so
// no bucket refills behind a test's back.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func withClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

func sipHeader(origin string) http.Header {
	h := http.Header{}
	h.Set("Sec-WebSocket-Protocol", "sip")
	if origin != "" {
		h.Set("Origin", origin)
	}
	return h
}

// dial opens a client connection asking for the sip subprotocol.
func dial(t *testing.T, dialer *websocket.Dialer, url string, header http.Header) *websocket.Conn {
	t.Helper()
	ws, resp, err := dialer.Dial(url, header)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "sip" {
		t.Errorf("selected subprotocol %q, want sip", got)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// dialRefused dials expecting an HTTP refusal; it returns status and body.
func dialRefused(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		_ = ws.Close()
		t.Fatalf("dial %s succeeded, want refusal", url)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v (no HTTP response)", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// readClose reads until the server's close frame and returns it.
func readClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	for range 1000 {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		t.Fatalf("read: %v, want a close frame", err)
	}
	t.Fatal("no close frame")
	return nil
}

// readSIP reads one frame and parses it as SIP.
func readSIP(t *testing.T, ws *websocket.Conn) (int, sip.Message) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	kind, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	msg, err := sip.NewParser().ParseSIP(data)
	if err != nil {
		t.Fatalf("parse frame: %v\n%s", err, data)
	}
	return kind, msg
}

func send(t *testing.T, ws *websocket.Conn, kind int, data string) {
	t.Helper()
	if err := ws.WriteMessage(kind, []byte(data)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func observerCore() (zapcore.Core, *observer.ObservedLogs) {
	return observer.New(zap.DebugLevel)
}
