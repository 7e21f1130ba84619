package sipws

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"

	"github.com/imsgate/imsgate/configs"
)

// transports runs a test over plain WS and over WSS.
var transports = []string{"ws", "wss"}

// startOver starts a server and returns a dialer and URL for transport.
func startOver(t *testing.T, transport string, mutate func(*configs.WS)) (*testServer, *websocket.Dialer, string) {
	t.Helper()
	cfg, pool := tlsTestConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	ts := startServer(t, cfg)
	if transport == "wss" {
		return ts, wssDialer(pool), ts.url
	}
	return ts, &websocket.Dialer{HandshakeTimeout: waitFor}, ts.wsURL
}

// answer200 makes the server answer every request with 200.
func answer200(ts *testServer) {
	ts.handler.onMessage = func(c *Conn, msg sip.Message) {
		if req, ok := msg.(*sip.Request); ok {
			_ = c.WriteMessage(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
}

// readFrame reads one data frame, answering control frames on the way.
func readFrame(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	kind, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return kind, string(data)
}

// TestDoubleCRLFKeepalive: RFC 5626 section 4.4.1 over WebSocket: a
// double CRLF is answered with one CRLF on the same connection, parked or
// not; a single CRLF (the pong form) gets nothing.
func TestDoubleCRLFKeepalive(t *testing.T) {
	for _, transport := range transports {
		for _, kind := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			t.Run(transport+"/"+map[int]string{websocket.TextMessage: "text", websocket.BinaryMessage: "binary"}[kind], func(t *testing.T) {
				ts, d, url := startOver(t, transport, nil)
				answer200(ts)
				ws := dial(t, d, url, sipHeader(""))
				send(t, ws, kind, "\r\n")
				send(t, ws, kind, registerMsg)
				c := ts.handler.nextMessage(t).conn
				if _, got := readFrame(t, ws); !strings.HasPrefix(got, "SIP/2.0 200") {
					t.Fatalf("first frame back = %q, want the 200 (a single CRLF is not answered)", got)
				}
				send(t, ws, kind, "\r\n\r\n")
				if k, got := readFrame(t, ws); got != "\r\n" || k != websocket.TextMessage {
					t.Fatalf("keepalive answer = %d %q, want a text CRLF", k, got)
				}
				waitParked(t, c)
				send(t, ws, kind, "\r\n\r\n")
				if _, got := readFrame(t, ws); got != "\r\n" {
					t.Fatalf("parked connection's keepalive answer = %q, want CRLF", got)
				}
			})
		}
	}
}

// TestNoPermessageDeflate: whatever the client offers, no extension is
// negotiated (Safari closes with 1006 when permessage-deflate is), and a
// compressed frame sent anyway is a protocol error.
func TestNoPermessageDeflate(t *testing.T) {
	offers := []struct {
		name    string
		gorilla bool   // gorilla's own offer (EnableCompression)
		header  string // else this Sec-WebSocket-Extensions, on a raw upgrade
	}{
		{name: "gorilla compression", gorilla: true},
		{name: "permessage-deflate with parameters", header: "permessage-deflate; client_max_window_bits"},
		{name: "old safari deflate-frame", header: "x-webkit-deflate-frame"},
	}
	for _, transport := range transports {
		for _, o := range offers {
			t.Run(transport+"/"+o.name, func(t *testing.T) {
				ts, d, url := startOver(t, transport, nil)
				answer200(ts)
				if !o.gorilla {
					conn, resp := rawUpgrade(t, d, url, o.header)
					if resp.StatusCode != http.StatusSwitchingProtocols {
						t.Fatalf("upgrade status %d", resp.StatusCode)
					}
					if ext := resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) != 0 {
						t.Fatalf("server negotiated %q", ext)
					}
					if _, err := conn.Write(maskedFrame(websocket.TextMessage, registerMsg)); err != nil {
						t.Fatal(err)
					}
					ts.handler.nextMessage(t)
					return
				}
				dialer := *d
				dialer.EnableCompression = true
				ws, resp, err := dialer.Dial(url, sipHeader(""))
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer ws.Close()
				if ext := resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) != 0 {
					t.Fatalf("server negotiated %q", ext)
				}
				send(t, ws, websocket.TextMessage, registerMsg)
				if _, got := readFrame(t, ws); !strings.HasPrefix(got, "SIP/2.0 200") {
					t.Errorf("got %q, want 200", got)
				}
			})
		}
		t.Run(transport+"/compressed frame refused", func(t *testing.T) {
			ts, d, url := startOver(t, transport, nil)
			ws := dial(t, d, url, sipHeader(""))
			frame := maskedFrame(websocket.TextMessage, registerMsg)
			frame[0] |= 0x40 // RSV1: "compressed" (RFC 7692 section 6)
			if _, err := ws.UnderlyingConn().Write(frame); err != nil {
				t.Fatalf("write: %v", err)
			}
			if ce := readClose(t, ws); ce.Code != websocket.CloseProtocolError {
				t.Errorf("close = %d %q, want 1002", ce.Code, ce.Text)
			}
			ts.handler.nextClosed(t)
		})
	}
}

// rawUpgrade sends an upgrade request of our own, extensions offered as
// given (gorilla's Dial refuses to send that header), and returns the
// connection and the response.
func rawUpgrade(t *testing.T, d *websocket.Dialer, wsURL, extensions string) (net.Conn, *http.Response) {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if u.Scheme == "wss" {
		conn, err = tls.Dial("tcp", u.Host, d.TLSClientConfig)
	} else {
		conn, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n" +
		"Sec-WebSocket-Extensions: " + extensions + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write upgrade: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	// Nothing follows the 101 until we send, so the reader holds no frame.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	return conn, resp
}

// TestFragmentedMessage: a SIP message in several frames (RFC 6455 section
// 5.4; Safari and iOS fragment large ones) is one message, control frames
// may come between its fragments, and ws.max_message_bytes bounds the
// whole; broken fragment sequences close the connection.
func TestFragmentedMessage(t *testing.T) {
	const text, binary, cont, ping = websocket.TextMessage, websocket.BinaryMessage, 0, websocket.PingMessage
	third := len(registerMsg) / 3
	a, b, c := registerMsg[:third], registerMsg[third:2*third], registerMsg[2*third:]
	big := strings.Repeat("x", 400)
	tests := []struct {
		name      string
		frames    [][]byte
		gorilla   bool // send registerMsg through a 64-byte gorilla write buffer instead
		wantClose int  // 0: the REGISTER arrives
	}{
		{name: "gorilla writer in pieces", gorilla: true},
		{name: "text in three", frames: [][]byte{maskedFragment(false, text, a), maskedFragment(false, cont, b), maskedFragment(true, cont, c)}},
		{name: "binary with a ping between", frames: [][]byte{maskedFragment(false, binary, a), maskedFrame(ping, "hi"),
			maskedFragment(false, cont, b), maskedFragment(true, cont, c)}},
		{name: "one byte a fragment", frames: func() [][]byte {
			out := [][]byte{maskedFragment(false, text, registerMsg[:1])}
			for i := 1; i < len(registerMsg); i++ {
				out = append(out, maskedFragment(i == len(registerMsg)-1, cont, registerMsg[i:i+1]))
			}
			return out
		}()},
		{name: "whole over max_message_bytes", frames: [][]byte{maskedFragment(false, text, big), maskedFragment(false, cont, big),
			maskedFragment(true, cont, big)}, wantClose: websocket.CloseMessageTooBig},
		{name: "continuation without a start", frames: [][]byte{maskedFragment(true, cont, registerMsg)}, wantClose: websocket.CloseProtocolError},
		{name: "new message inside a fragmented one", frames: [][]byte{maskedFragment(false, text, a), maskedFragment(true, text, registerMsg)},
			wantClose: websocket.CloseProtocolError},
	}
	for _, transport := range transports {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				ts, d, url := startOver(t, transport, func(c *configs.WS) { c.MaxMessageBytes = 1024 })
				if tt.gorilla {
					d.WriteBufferSize = 64
				}
				ws := dial(t, d, url, sipHeader(""))
				if tt.gorilla {
					w, err := ws.NextWriter(websocket.TextMessage)
					if err != nil {
						t.Fatal(err)
					}
					for _, piece := range []string{a, b, c} {
						if _, err := w.Write([]byte(piece)); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
				}
				for _, f := range tt.frames {
					if _, err := ws.UnderlyingConn().Write(f); err != nil {
						t.Fatalf("write: %v", err)
					}
				}
				if tt.wantClose != 0 {
					if ce := readClose(t, ws); ce.Code != tt.wantClose {
						t.Errorf("close = %d %q, want %d", ce.Code, ce.Text, tt.wantClose)
					}
					ts.handler.nextClosed(t)
					return
				}
				got := ts.handler.nextMessage(t)
				if req, ok := got.msg.(*sip.Request); !ok || req.CallID().Value() != "aiuy7k9njasd" || req.Contact() == nil {
					t.Fatalf("got %v, want the whole REGISTER", got.msg)
				}
			})
		}
	}
}
