package sipws

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

// TestIdleWSSConnectionsPark: idle WSS connections park like WS ones: no
// goroutine each; a parked one wakes for a message and parks again.
func TestIdleWSSConnectionsPark(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle connections park on Linux only")
	}
	cfg, pool := tlsTestConfig(t)
	ts := startServer(t, cfg)
	const n = 64
	before := runtime.NumGoroutine()
	clients := make([]*websocket.Conn, n)
	conns := make([]*Conn, n)
	for i := range n {
		clients[i] = dial(t, wssDialer(pool), ts.url, sipHeader(""))
		send(t, clients[i], websocket.TextMessage, registerMsg)
		conns[i] = ts.handler.nextMessage(t).conn
	}
	for _, c := range conns {
		waitParked(t, c)
	}
	// Handler goroutines end just after their last frame: wait for them.
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine()-before >= n/8 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines more with %d parked WSS connections", runtime.NumGoroutine()-before, n)
		}
		time.Sleep(time.Millisecond)
	}

	for _, i := range []int{0, n / 2, n - 1} {
		send(t, clients[i], websocket.TextMessage, withCallID("wake"+strings.Repeat("x", i)))
		got := ts.handler.nextMessage(t)
		if got.conn != conns[i] || got.msg.CallID().Value() != "wake"+strings.Repeat("x", i) {
			t.Fatalf("woken connection %d delivered %v on %p", i, got.msg.CallID(), got.conn)
		}
		waitParked(t, conns[i])
	}
}

// TestParkedWSSIdleTimeout: a parked WSS connection whose peer never
// answers the pings is woken by the ping timer and closed as idle.
func TestParkedWSSIdleTimeout(t *testing.T) {
	cfg, pool := tlsTestConfig(t)
	cfg.PingInterval = 50 * time.Millisecond
	cfg.IdleTimeout = 500 * time.Millisecond
	ts := startServer(t, cfg)
	ws := dial(t, wssDialer(pool), ts.url, sipHeader(""))
	ws.SetPingHandler(func(string) error { return nil }) // never answers
	send(t, ws, websocket.TextMessage, registerMsg)
	c := ts.handler.nextMessage(t).conn
	waitParked(t, c)
	if ce := readClose(t, ws); ce.Code != websocket.CloseNormalClosure || ce.Text != "idle timeout" {
		t.Errorf("close = %d %q, want 1000 idle timeout", ce.Code, ce.Text)
	}
	ts.handler.nextClosed(t)
}

// paddedRegister is a masked REGISTER frame of exactly size bytes.
func paddedRegister(t *testing.T, callID string, size int) []byte {
	t.Helper()
	msg := withCallID(callID)
	const header = "X-Pad: \r\n"
	pad := size - len(maskedFrame(websocket.TextMessage, msg)) - len(header)
	if pad < 1 || len(msg)+len(header)+pad < 126 {
		t.Fatalf("cannot pad a REGISTER to a %d-byte frame", size)
	}
	msg = strings.Replace(msg, "Content-Length", "X-Pad: "+strings.Repeat("p", pad)+"\r\nContent-Length", 1)
	f := maskedFrame(websocket.TextMessage, msg)
	if len(f) != size {
		t.Fatalf("padded frame is %d bytes, want %d", len(f), size)
	}
	return f
}

// TestWSSParkKeepsBufferedRecords: frames crypto/tls has already taken off
// the socket must be handled before the connection parks, since epoll on
// the socket would never report them: plaintext left over once our 1 KiB
// read buffer is full, and whole records read in the same segment.
func TestWSSParkKeepsBufferedRecords(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle connections park on Linux only")
	}
	tests := []struct {
		name  string
		write func(t *testing.T, ws *websocket.Conn, cc *corkConn, ids []string)
	}{
		{name: "plaintext past the read buffer", write: func(t *testing.T, ws *websocket.Conn, _ *corkConn, ids []string) {
			// One record; the first two frames fill the read buffer exactly.
			var batch []byte
			for _, id := range ids {
				batch = append(batch, paddedRegister(t, id, readBufferSize/2)...)
			}
			if _, err := ws.UnderlyingConn().Write(batch); err != nil {
				t.Fatalf("write: %v", err)
			}
		}},
		{name: "records in one segment", write: func(t *testing.T, ws *websocket.Conn, cc *corkConn, ids []string) {
			cc.cork()
			for _, id := range ids {
				send(t, ws, websocket.TextMessage, withCallID(id))
			}
			if err := cc.uncork(); err != nil {
				t.Fatalf("uncork: %v", err)
			}
		}},
		{name: "a pong and a message in one segment", write: func(t *testing.T, ws *websocket.Conn, cc *corkConn, ids []string) {
			cc.cork()
			for _, id := range ids {
				if err := ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(waitFor)); err != nil {
					t.Fatal(err)
				}
				send(t, ws, websocket.TextMessage, withCallID(id))
			}
			if err := cc.uncork(); err != nil {
				t.Fatalf("uncork: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, pool := tlsTestConfig(t)
			ts := startServer(t, cfg) // pings every 30s: a stuck frame would wait for one
			ws, cc := dialCorked(t, ts.url, pool)
			send(t, ws, websocket.TextMessage, registerMsg)
			waitParked(t, ts.handler.nextMessage(t).conn)
			ids := callIDs(3)
			tt.write(t, ws, cc, ids)
			for i, id := range ids {
				got := ts.handler.nextMessage(t)
				if req, ok := got.msg.(*sip.Request); !ok || req.CallID().Value() != id {
					t.Fatalf("message %d = %v, want Call-ID %s", i, got.msg, id)
				}
			}
		})
	}
}
