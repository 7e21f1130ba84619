package sipws

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestIPConns(t *testing.T) {
	c := newIPConns(2)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, step := range []struct {
		ip   netip.Addr
		want bool
	}{{a, true}, {a, true}, {a, false}, {b, true}} {
		if got := c.acquire(step.ip); got != step.want {
			t.Fatalf("acquire(%v) = %v, want %v", step.ip, got, step.want)
		}
	}
	c.release(a)
	if !c.acquire(a) {
		t.Fatal("a released place not taken again")
	}
	c.release(a)
	c.release(a)
	c.release(b)
	if len(c.n) != 0 {
		t.Errorf("entries left after every release: %v", c.n)
	}
}

func TestAddrIP(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5060}, want: "192.0.2.7"},
		{addr: &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5060}, want: "192.0.2.7"},
		{addr: &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 5060}, want: "2001:db8::7"},
		{addr: &net.UDPAddr{IP: net.ParseIP("2001:db8::8"), Port: 5060}, want: "2001:db8::8"},
		{addr: &net.UnixAddr{Name: "/run/imsgate.sock"}, want: "invalid IP"},
		{addr: nil, want: "invalid IP"},
	}
	for _, tt := range tests {
		if got := addrIP(tt.addr).String(); got != tt.want {
			t.Errorf("addrIP(%v) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

// rawHTTP opens a TCP connection and makes one plain HTTP request on it,
// keeping it open (keep-alive).
func rawHTTP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, "GET /page HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	readResponse(t, c)
	return c
}

// expectClosedAtOnce checks that the server closes a new connection from
// addr before sending anything.
func expectClosedAtOnce(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return // reset before connect returned
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed at once", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestConnsPerIP: WebSocket and plain HTTP connections alike count against
// conns_per_ip from accept; one past it is closed at once, and a closed
// connection gives its place back.
func TestConnsPerIP(t *testing.T) {
	lim := roomyLimits()
	lim.ConnsPerIP = 2
	ts := startServer(t, testConfig(), WithLimits(lim))
	addr := strings.TrimPrefix(ts.url, "ws://")

	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	rawHTTP(t, addr)
	expectClosedAtOnce(t, addr)
	if n := ts.srv.Refusals()["conns_per_ip"]; n != 1 {
		t.Errorf("conns_per_ip refusals = %d, want 1", n)
	}

	_ = ws.Close()
	ts.handler.nextClosed(t) // its socket is closed before ConnClosed
	dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	expectClosedAtOnce(t, addr)
}
