package sipws

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/testcert"
)

func TestUpgradeRefused(t *testing.T) {
	tests := []struct {
		name       string
		path       string // cfg.Path
		origins    []string
		dialPath   string
		header     http.Header
		wantStatus int
		wantBody   string
	}{
		{name: "no subprotocol", header: http.Header{}, wantStatus: http.StatusBadRequest, wantBody: `subprotocol "sip" is required`},
		{name: "other subprotocol", header: http.Header{"Sec-Websocket-Protocol": {"chat"}},
			wantStatus: http.StatusBadRequest, wantBody: `subprotocol "sip" is required`},
		{name: "wrong path", path: "/sip", dialPath: "/other", header: sipHeader(""),
			wantStatus: http.StatusNotFound, wantBody: "no WebSocket endpoint"},
		{name: "origin not allowed", origins: []string{"https://phone.example.com"}, header: sipHeader("https://evil.example.com"),
			wantStatus: http.StatusForbidden, wantBody: "origin not allowed"},
		{name: "origin other port", origins: []string{"https://phone.example.com"}, header: sipHeader("https://phone.example.com:8443"),
			wantStatus: http.StatusForbidden, wantBody: "origin not allowed"},
		{name: "origin missing", origins: []string{"https://phone.example.com"}, header: sipHeader(""),
			wantStatus: http.StatusForbidden, wantBody: "origin not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Path = tt.path
			cfg.Origins = tt.origins
			ts := startServer(t, cfg)
			status, body := dialRefused(t, ts.url+tt.dialPath, tt.header)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
			if n := ts.srv.Len(); n != 0 {
				t.Errorf("Len = %d after refusal", n)
			}
		})
	}
}

func TestUpgradeAccepted(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		origins  []string
		dialPath string
		origin   string
	}{
		{name: "allow all", origin: "https://anything.example.org"},
		{name: "allow all without origin"},
		{name: "listed origin", origins: []string{"https://phone.example.com", "http://localhost:3000"}, origin: "https://phone.example.com"},
		{name: "listed origin any case", origins: []string{"https://Phone.Example.com"}, origin: "HTTPS://PHONE.example.COM"},
		{name: "listed origin with port", origins: []string{"http://localhost:3000"}, origin: "http://localhost:3000"},
		{name: "configured path", path: "/ws", dialPath: "/ws"},
		{name: "any path", dialPath: "/some/where"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Path = tt.path
			cfg.Origins = tt.origins
			ts := startServer(t, cfg)
			ws := dial(t, websocket.DefaultDialer, ts.url+tt.dialPath, sipHeader(tt.origin))
			send(t, ws, websocket.TextMessage, registerMsg)
			got := ts.handler.nextMessage(t)
			if got.conn.Origin() != tt.origin {
				t.Errorf("Origin() = %q, want %q", got.conn.Origin(), tt.origin)
			}
		})
	}
}

func TestAllowAllLogsWarning(t *testing.T) {
	tests := []struct {
		name     string
		origins  []string
		wantWarn bool
	}{
		{name: "empty allowlist", wantWarn: true},
		{name: "allowlist", origins: []string{"https://phone.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observerCore()
			cfg := testConfig()
			cfg.Origins = tt.origins
			if _, err := NewServer(cfg, newRecordingHandler(), zap.New(core)); err != nil {
				t.Fatalf("NewServer: %v", err)
			}
			warned := logs.FilterLevelExact(zap.WarnLevel).FilterMessageSnippet("every origin is allowed").Len() > 0
			if warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v", warned, tt.wantWarn)
			}
		})
	}
}

func TestReceiveMessage(t *testing.T) {
	tests := []struct {
		name  string
		kind  int
		frame string
	}{
		{name: "text frame", kind: websocket.TextMessage, frame: registerMsg},
		{name: "binary frame", kind: websocket.BinaryMessage, frame: registerMsg},
		{name: "invalid utf8 in text frame", kind: websocket.TextMessage,
			frame: strings.Replace(registerMsg, "<sip:alice@example.com>;tag", "\"Al\xffce\" <sip:alice@example.com>;tag", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, testConfig())
			ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
			send(t, ws, websocket.TextMessage, "\r\n\r\n") // keepalive, ignored
			send(t, ws, tt.kind, tt.frame)
			got := ts.handler.nextMessage(t)
			req, ok := got.msg.(*sip.Request)
			if !ok {
				t.Fatalf("got %T, want *sip.Request", got.msg)
			}
			if req.Method != sip.REGISTER {
				t.Errorf("method = %s, want REGISTER", req.Method)
			}
			if id := req.CallID().Value(); id != "aiuy7k9njasd" {
				t.Errorf("Call-ID = %q", id)
			}
			if req.Transport() != "WS" || got.conn.Transport() != "WS" {
				t.Errorf("transport = %q / %q, want WS", req.Transport(), got.conn.Transport())
			}
			if req.Source() != ws.LocalAddr().String() {
				t.Errorf("source = %q, want %q", req.Source(), ws.LocalAddr())
			}
			if got.conn.RemoteAddr().String() != ws.LocalAddr().String() {
				t.Errorf("RemoteAddr = %v, want %v", got.conn.RemoteAddr(), ws.LocalAddr())
			}
		})
	}
}

func TestWriteMessageArrivesAsOneTextFrame(t *testing.T) {
	ts := startServer(t, testConfig())
	ts.handler.onMessage = func(c *Conn, msg sip.Message) {
		req := msg.(*sip.Request)
		if err := c.WriteMessage(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
			t.Errorf("WriteMessage: %v", err)
		}
	}
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	kind, msg := readSIP(t, ws)
	if kind != websocket.TextMessage {
		t.Errorf("frame type = %d, want text", kind)
	}
	resp, ok := msg.(*sip.Response)
	if !ok || resp.StatusCode != 200 {
		t.Fatalf("got %v, want 200 OK", msg.String())
	}
	if id := resp.CallID().Value(); id != "aiuy7k9njasd" {
		t.Errorf("Call-ID = %q", id)
	}
}

func TestOversizeFrameCloses1009(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 1024
	ts := startServer(t, cfg)
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg+strings.Repeat("x", 2048))
	if ce := readClose(t, ws); ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("close code = %d, want 1009", ce.Code)
	}
	ts.handler.nextClosed(t)
}

func TestBadRequestAnswered400(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, badMaxForwards)
	_, msg := readSIP(t, ws)
	resp, ok := msg.(*sip.Response)
	if !ok || resp.StatusCode != 400 {
		t.Fatalf("got %s, want 400", msg.String())
	}
	if id := resp.CallID().Value(); id != "3848276298220188511@atlanta.example.com" {
		t.Errorf("Call-ID = %q", id)
	}
	if cseq := resp.CSeq(); cseq.SeqNo != 314159 || cseq.MethodName != sip.INVITE {
		t.Errorf("CSeq = %s", cseq.Value())
	}
	if branch := resp.Via().Params.GetOr("branch", ""); branch != "z9hG4bK776" {
		t.Errorf("Via branch = %q", branch)
	}
	// The connection stays: a good message still goes through.
	send(t, ws, websocket.TextMessage, registerMsg)
	ts.handler.nextMessage(t)
}

// TestMalformedResponseDropped: a response is never answered, and one that
// cannot be parsed is dropped (RFC 4475 bigcode: "simply drop it"); the
// connection stays.
func TestMalformedResponseDropped(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK1\r\n"+
		"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCSeq: 1 INVITE\r\n\r\n")
	send(t, ws, websocket.TextMessage, registerMsg)
	if got := ts.handler.nextMessage(t).msg.CallID().Value(); got != "aiuy7k9njasd" {
		t.Errorf("handler got Call-ID %q, want the REGISTER's", got)
	}
	if n := ts.srv.Refusals()["malformed"]; n != 1 {
		t.Errorf("malformed refusals = %d, want 1", n)
	}
}

func TestGarbageClosesConnection(t *testing.T) {
	tests := []struct {
		name  string
		kind  int
		frame string
	}{
		{name: "text", kind: websocket.TextMessage, frame: "hello, world"},
		{name: "binary", kind: websocket.BinaryMessage, frame: "\x00\x01\x02\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, testConfig())
			ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
			send(t, ws, tt.kind, tt.frame)
			ce := readClose(t, ws)
			if ce.Code != websocket.CloseInvalidFramePayloadData {
				t.Errorf("close code = %d, want 1007", ce.Code)
			}
			if !containsFold(ce.Text, "invalid SIP message") || len(ce.Text) > maxCloseReason {
				t.Errorf("close reason = %q", ce.Text)
			}
			ts.handler.nextClosed(t)
		})
	}
}

func TestPingAndIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.IdleTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg)
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	pinged := make(chan struct{}, 1)
	// Record pings and never answer them, so the server hears nothing.
	ws.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})
	ce := readClose(t, ws)
	select {
	case <-pinged:
	default:
		t.Error("no ping arrived before the close")
	}
	if ce.Code != websocket.CloseNormalClosure || ce.Text != "idle timeout" {
		t.Errorf("close = %d %q, want 1000 idle timeout", ce.Code, ce.Text)
	}
	ts.handler.nextClosed(t)
}

func TestPongKeepsConnectionAlive(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.IdleTimeout = time.Second
	ts := startServer(t, cfg)
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	// The default ping handler answers with pongs while we read. Count
	// pings until well past the idle timeout; the conn must stay open.
	pings := make(chan struct{}, 64)
	answer := ws.PingHandler()
	ws.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return answer(data)
	})
	readErr := make(chan error, 1)
	go func() {
		_, _, err := ws.ReadMessage()
		readErr <- err
	}()
	for i := range 30 {
		select {
		case <-pings:
		case err := <-readErr:
			t.Fatalf("connection ended after %d pings: %v", i, err)
		case <-time.After(waitFor):
			t.Fatal("pings stopped")
		}
	}
	_ = ws.Close()
	<-readErr
	ts.handler.nextClosed(t)
}

func TestWSS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	cfg := testConfig()
	cfg.TLSCert = certFile
	cfg.TLSKey = keyFile
	ts := startServer(t, cfg)
	dialer := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, HandshakeTimeout: waitFor}
	ws := dial(t, dialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	got := ts.handler.nextMessage(t)
	if got.msg.Transport() != "WSS" || got.conn.Transport() != "WSS" {
		t.Errorf("transport = %q / %q, want WSS", got.msg.Transport(), got.conn.Transport())
	}
}

func TestRegistryAndConnClosedOrdering(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	c := ts.handler.nextMessage(t).conn

	if !regexp.MustCompile(`^[a-z0-9]{20,}$`).MatchString(c.Flow()) {
		t.Errorf("flow %q is not 20+ of [a-z0-9]", c.Flow())
	}
	if found, ok := ts.srv.Lookup(c.Flow()); !ok || found != c {
		t.Errorf("Lookup(%q) = %v, %v", c.Flow(), found, ok)
	}
	if n := ts.srv.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	if _, ok := ts.srv.Lookup("nosuchflow"); ok {
		t.Error("Lookup of an unknown flow succeeded")
	}

	ws2 := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws2, websocket.TextMessage, registerMsg)
	c2 := ts.handler.nextMessage(t).conn
	if c2.Flow() == c.Flow() {
		t.Error("two connections share a flow")
	}

	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(waitFor)); err != nil {
		t.Fatalf("send close: %v", err)
	}
	view := ts.handler.nextClosed(t)
	if view.conn != c {
		t.Fatal("ConnClosed for the wrong connection")
	}
	if view.found || view.len != 1 || !view.doneShut {
		t.Errorf("inside ConnClosed: found=%v len=%d done=%v, want false 1 true", view.found, view.len, view.doneShut)
	}
	if err := c.WriteMessage(sip.NewResponse(200, "OK")); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteMessage after close = %v, want ErrClosed", err)
	}
	c.Close(websocket.CloseNormalClosure, "again") // idempotent
}

func TestCloseFromGateway(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	c := ts.handler.nextMessage(t).conn
	c.Close(4000, strings.Repeat("long reason ", 20))
	c.Close(websocket.CloseNormalClosure, "second call ignored")
	ce := readClose(t, ws)
	if ce.Code != 4000 || len(ce.Text) > maxCloseReason || !strings.HasPrefix(ce.Text, "long reason") {
		t.Errorf("close = %d %q", ce.Code, ce.Text)
	}
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		t.Fatal("Done not closed")
	}
	ts.handler.nextClosed(t)
}

func TestSendQueueFull(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	c := ts.handler.nextMessage(t).conn
	// Pretend a writer is stuck on a slow peer: the worker is not run, so
	// nothing drains the queue.
	var stuck func()
	c.mu.Lock()
	c.writer.Init(&c.mu, c.write, func(worker func()) bool { stuck = worker; return true })
	c.mu.Unlock()
	resp := sip.NewResponse(200, "OK")
	for i := range sendQueueSize {
		if err := c.WriteMessage(resp); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := c.WriteMessage(resp); !errors.Is(err, ErrSendQueueFull) {
		t.Fatalf("write over the limit = %v, want ErrSendQueueFull", err)
	}
	c.mu.Lock()
	code, why := c.closeCode, c.closeWhy
	c.mu.Unlock()
	if code != websocket.ClosePolicyViolation || why != "send queue full" {
		t.Errorf("close = %d %q, want 1008 send queue full", code, why)
	}
	if err := c.WriteMessage(resp); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close = %v, want ErrClosed", err)
	}
	// The stuck write ends (its deadline, in life); the close goes out.
	c.mu.Lock()
	worker := stuck
	c.mu.Unlock()
	go worker()
	if ce := readClose(t, ws); ce.Code != websocket.ClosePolicyViolation {
		t.Errorf("peer saw close %d, want 1008", ce.Code)
	}
	ts.handler.nextClosed(t)
}

func TestDrainRefusesNewUpgrades(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	ts.srv.Drain()
	status, body := dialRefused(t, ts.url, sipHeader(""))
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("refusal = %d %q, want 503 draining", status, body)
	}
	// The open connection still works.
	send(t, ws, websocket.TextMessage, registerMsg)
	ts.handler.nextMessage(t)
}

func TestShutdownClosesGoingAway(t *testing.T) {
	ts := startServer(t, testConfig())
	clients := []*websocket.Conn{
		dial(t, websocket.DefaultDialer, ts.url, sipHeader("")),
		dial(t, websocket.DefaultDialer, ts.url, sipHeader("")),
	}
	for _, ws := range clients {
		send(t, ws, websocket.TextMessage, registerMsg)
		ts.handler.nextMessage(t)
	}
	closes := make(chan *websocket.CloseError, len(clients))
	for _, ws := range clients {
		go func() {
			// Client read loops answer the close frame, like a browser.
			_ = ws.SetReadDeadline(time.Now().Add(waitFor))
			var ce *websocket.CloseError
			for range 100 {
				if _, _, err := ws.ReadMessage(); err != nil {
					errors.As(err, &ce)
					break
				}
			}
			closes <- ce
		}()
	}
	ts.shutdown(t)
	for range clients {
		select {
		case ce := <-closes:
			if ce == nil || ce.Code != websocket.CloseGoingAway {
				t.Errorf("close = %v, want 1001", ce)
			}
		case <-time.After(waitFor):
			t.Fatal("client saw no close")
		}
	}
	if n := ts.srv.Len(); n != 0 {
		t.Errorf("Len = %d after Shutdown", n)
	}
	for range clients {
		ts.handler.nextClosed(t)
	}
	// After Shutdown nothing is accepted.
	if _, _, err := websocket.DefaultDialer.Dial(ts.url, sipHeader("")); err == nil {
		t.Error("dial after Shutdown succeeded")
	}
}

func TestShutdownContextEndsCutsConnections(t *testing.T) {
	ts := startServer(t, testConfig())
	// This client never reads, so it never answers the close frame.
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	ts.handler.nextMessage(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v", err)
	}
	ts.handler.nextClosed(t)
	if n := ts.srv.Len(); n != 0 {
		t.Errorf("Len = %d after Shutdown", n)
	}
}

func TestNonUpgradeRequests(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "web phone") })
	tests := []struct {
		name       string
		opts       []Option
		wantStatus int
		wantBody   string
	}{
		{name: "default 404", wantStatus: http.StatusNotFound, wantBody: "404"},
		{name: "http handler", opts: []Option{WithHTTPHandler(page)}, wantStatus: http.StatusOK, wantBody: "web phone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, testConfig(), tt.opts...)
			client := &http.Client{Timeout: waitFor, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			resp, err := client.Get("http" + strings.TrimPrefix(ts.url, "ws") + "/index.html")
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("GET = %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestNewServerRejects(t *testing.T) {
	tests := []struct {
		name    string
		handler Handler
		mutate  func(*configs.WS)
	}{
		{name: "nil handler", mutate: func(*configs.WS) {}},
		{name: "zero ping interval", handler: newRecordingHandler(), mutate: func(c *configs.WS) { c.PingInterval = 0 }},
		{name: "bad origin", handler: newRecordingHandler(), mutate: func(c *configs.WS) { c.Origins = []string{"not an origin"} }},
		{name: "missing cert file", handler: newRecordingHandler(), mutate: func(c *configs.WS) {
			c.TLSCert, c.TLSKey = filepath.Join(t.TempDir(), "none.pem"), filepath.Join(t.TempDir(), "none.key")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(&cfg)
			if _, err := NewServer(cfg, tt.handler, zap.NewNop()); err == nil {
				t.Error("NewServer succeeded, want an error")
			}
		})
	}
}

// selfSignedCert writes a fresh certificate for 127.0.0.1 to a temp dir.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool = x509.NewCertPool()
	pool.AddCert(testcert.Write(t, certFile, keyFile, "imsgate test"))
	return certFile, keyFile, pool
}

func TestConnectionLogLines(t *testing.T) {
	core, logs := observerCore()
	ts := startServerWithLog(t, testConfig(), zap.New(core))
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader("https://phone.example.com"))
	send(t, ws, websocket.TextMessage, registerMsg)
	c := ts.handler.nextMessage(t).conn
	if err := c.WriteMessage(nil); err == nil {
		t.Error("WriteMessage(nil) succeeded")
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(waitFor))
	ts.handler.nextClosed(t)

	tests := []struct {
		message string
		level   zapcore.Level
		keys    []string
	}{
		{message: "ws connection open", level: zap.InfoLevel, keys: []string{"flow", "remote_addr", "origin"}},
		{message: "ws connection closed", level: zap.InfoLevel, keys: []string{"flow", "reason", "dur"}},
		{message: "sip in", level: zap.DebugLevel, keys: []string{"flow", "method", "sip_call_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			entries := logs.FilterMessage(tt.message).All()
			if len(entries) != 1 {
				t.Fatalf("%d %q lines, want 1", len(entries), tt.message)
			}
			if entries[0].Level != tt.level {
				t.Errorf("level = %v, want %v", entries[0].Level, tt.level)
			}
			fields := entries[0].ContextMap()
			for _, k := range tt.keys {
				if _, ok := fields[k]; !ok {
					t.Errorf("no %s in %v", k, fields)
				}
			}
			if fields["flow"] != c.Flow() {
				t.Errorf("flow = %v, want %s", fields["flow"], c.Flow())
			}
		})
	}
}
