package sipws

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// shortUpgradeTimeout is upgrade_timeout in these tests: the server, not
// the test, waits for it.
const shortUpgradeTimeout = 200 * time.Millisecond

// expectClosedByServer reads until the server closes c.
func expectClosedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.Copy(io.Discard, c); err != nil && isTimeout(err) {
		t.Fatalf("connection still open after %v", waitFor)
	}
}

// TestUpgradeTimeout: a client that does not complete its request (or its
// TLS handshake) within upgrade_timeout is closed and counted; one that
// was served and falls silent is closed as idle, and not counted.
func TestUpgradeTimeout(t *testing.T) {
	tests := []struct {
		name    string
		tls     bool
		send    []string // each written in turn
		counted bool
	}{
		{name: "silent", counted: true},
		{name: "partial request", send: []string{"GET / HTTP/1.1\r\nHost: gw\r\n"}, counted: true},
		{name: "silent tls", tls: true, counted: true},
		{name: "idle after a request", send: []string{"GET /page HTTP/1.1\r\nHost: gw\r\n\r\n"}},
		{name: "second request partial", send: []string{"GET /page HTTP/1.1\r\nHost: gw\r\n\r\n", "GET /page HTTP/1.1\r\n"},
			counted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.tls {
				cfg, _ = tlsTestConfig(t)
			}
			lim := roomyLimits()
			lim.UpgradeTimeout = shortUpgradeTimeout
			ts := startServer(t, cfg, WithLimits(lim))
			addr := strings.TrimPrefix(strings.TrimPrefix(ts.url, "wss://"), "ws://")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			for _, s := range tt.send {
				if _, err := io.WriteString(c, s); err != nil {
					t.Fatalf("write: %v", err)
				}
				if strings.HasSuffix(s, "\r\n\r\n") {
					readResponse(t, c)
				}
			}
			expectClosedByServer(t, c)
			want := uint64(0)
			if tt.counted {
				want = 1
			}
			if n := ts.srv.Refusals()["upgrade_timeout"]; n != want {
				t.Errorf("upgrade_timeout refusals = %d, want %d", n, want)
			}
		})
	}
}

// readResponse reads one HTTP response off c; the server sends nothing
// after it, so the reader's buffer takes nothing from later reads.
func readResponse(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// TestUpgradeHeadersTooLarge: headers over max_upgrade_bytes (and the 4 KiB
// net/http allows beyond) get 431.
func TestUpgradeHeadersTooLarge(t *testing.T) {
	lim := roomyLimits()
	lim.MaxUpgradeBytes = 1024
	ts := startServer(t, testConfig(), WithLimits(lim))
	// Just past the limit (within net/http's own slack) and far past it.
	for _, pad := range []int{1024, 1024 + 4096} {
		h := sipHeader("")
		h.Set("X-Padding", strings.Repeat("p", pad))
		ws, resp, err := websocket.DefaultDialer.Dial(ts.url, h)
		if err == nil {
			_ = ws.Close()
			t.Fatalf("upgrade with %d bytes of padding accepted", pad)
		}
		if resp == nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("padding %d: response %v, %v: want 431", pad, resp, err)
		}
		_ = resp.Body.Close()
	}
	// Headers within the bound upgrade.
	dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
}
