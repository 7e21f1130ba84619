package sipws

import (
	"bufio"
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

func isParked(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parked
}

// waitParked waits until c is parked, or fails where parking is expected.
func waitParked(t *testing.T, c *Conn) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("idle connections park on Linux only")
	}
	deadline := time.Now().Add(waitFor)
	for !isParked(c) {
		if time.Now().After(deadline) {
			t.Fatal("connection did not park")
		}
		time.Sleep(time.Millisecond)
	}
}

// maskedFrame is a client frame (RFC 6455 section 5.2), FIN set, payload
// under 64 KiB, masked with a fixed key.
func maskedFrame(opcode byte, payload string) []byte {
	return maskedFragment(true, opcode, payload)
}

// maskedFragment is maskedFrame with FIN as given: a message's first
// fragment has its opcode, the others opcode 0 (continuation).
func maskedFragment(fin bool, opcode byte, payload string) []byte {
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	b := []byte{opcode}
	if fin {
		b[0] |= 0x80
	}
	if len(payload) < 126 {
		b = append(b, 0x80|byte(len(payload)))
	} else {
		b = append(b, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	b = append(b, key[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// TestIdleConnectionParks: a silent connection parks (no reader goroutine),
// a message wakes it and is delivered, and it parks again; so does a pong.
func TestIdleConnectionParks(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = 30 * time.Millisecond
	cfg.IdleTimeout = time.Second
	ts := startServer(t, cfg)
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	c := ts.handler.nextMessage(t).conn
	waitParked(t, c)

	// Pings are answered by the client's reader; each pong wakes the
	// connection, which parks again and stays open past the idle timeout.
	readErr := make(chan error, 1)
	go func() {
		_, _, err := ws.ReadMessage()
		readErr <- err
	}()
	time.Sleep(2 * cfg.IdleTimeout)
	waitParked(t, c)
	select {
	case err := <-readErr:
		t.Fatalf("connection ended: %v", err)
	default:
	}
	send(t, ws, websocket.TextMessage, registerMsg)
	if got := ts.handler.nextMessage(t); got.conn != c {
		t.Error("message from another connection")
	}
	waitParked(t, c)
	_ = ws.Close()
	<-readErr
	ts.handler.nextClosed(t)
}

// TestParkKeepsBufferedFrames: frames that arrive in one TCP segment land
// in the read buffer together; the connection must not park before it has
// handled all of them, pongs among them.
func TestParkKeepsBufferedFrames(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, "\r\n\r\n") // keepalive: ignored
	var batch []byte
	const n = 3
	for i := range n {
		msg := strings.Replace(registerMsg, "aiuy7k9njasd", "c"+strings.Repeat("y", i+1), 1)
		batch = append(batch, maskedFrame(0xA, "")...) // an unsolicited pong (RFC 6455 section 5.5.3)
		batch = append(batch, maskedFrame(websocket.TextMessage, msg)...)
	}
	if _, err := ws.UnderlyingConn().Write(batch); err != nil {
		t.Fatalf("write: %v", err)
	}
	for i := range n {
		got := ts.handler.nextMessage(t)
		req, ok := got.msg.(*sip.Request)
		if !ok || req.Method != sip.REGISTER || req.CallID().Value() != "c"+strings.Repeat("y", i+1) {
			t.Fatalf("message %d = %v", i, got.msg)
		}
	}
}

// TestShutdownWithParkedConnections: parked connections get their reader
// back to see the close; Shutdown waits for them and ends the watcher.
func TestShutdownWithParkedConnections(t *testing.T) {
	ts := startServer(t, testConfig())
	var conns []*websocket.Conn
	for range 3 {
		ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
		send(t, ws, websocket.TextMessage, registerMsg)
		waitParked(t, ts.handler.nextMessage(t).conn)
		conns = append(conns, ws)
	}
	ts.shutdown(t)
	for _, ws := range conns {
		if ce := readClose(t, ws); ce.Code != websocket.CloseGoingAway {
			t.Errorf("close = %d %q, want 1001", ce.Code, ce.Text)
		}
	}
	if n := ts.srv.Len(); n != 0 {
		t.Errorf("Len = %d after Shutdown", n)
	}
}

// FuzzPongFrameLen: whatever the bytes, pongFrameLen names either nothing
// or a whole masked pong frame of at most 125 payload bytes, and consumes
// nothing.
func FuzzPongFrameLen(f *testing.F) {
	f.Add(maskedFrame(0xA, ""))
	f.Add(maskedFrame(0xA, "keepalive"))
	f.Add(append(maskedFrame(0xA, "x"), maskedFrame(websocket.TextMessage, registerMsg)...))
	f.Add(maskedFrame(0x9, "ping"))
	f.Add([]byte{0x8A, 0x05, 'h', 'e', 'l', 'l', 'o'}) // unmasked
	f.Add([]byte{0x8A, 0xFE, 0x00, 0x80})              // extended length
	f.Add([]byte{0x8A})
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), readBufferSize)
		n := pongFrameLen(br)
		if n == 0 {
			return
		}
		if n < 6 || n > 6+125 || n > len(data) || data[0] != 0x8A || data[1]&0x80 == 0 || n != 6+int(data[1]&0x7f) {
			t.Fatalf("pongFrameLen = %d for % x", n, data[:min(len(data), 8)])
		}
		if br.Buffered() < n {
			t.Fatalf("buffered %d < %d: bytes were consumed", br.Buffered(), n)
		}
		if b, _ := br.Peek(1); b[0] != data[0] {
			t.Fatal("reader moved")
		}
	})
}
