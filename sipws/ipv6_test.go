package sipws

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gorilla/websocket"
)

// TestIPv6Loopback serves WS on [::1] and completes a SIP exchange; the
// connection counts against its IPv6 address.
func TestIPv6Loopback(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = probe.Close()

	lim := roomyLimits()
	lim.ConnsPerIP = 1
	ts := startServer(t, testConfig(), WithLimits(lim))
	answerRequests(ts)
	url := "ws://" + ts.listen(t, "[::1]:0", ts.srv.Serve)

	ws := dial(t, websocket.DefaultDialer, url, sipHeader(""))
	send(t, ws, websocket.TextMessage, optionsMsg("v6"))
	expectStatus(t, ws, "v6", 200)
	r := ts.handler.nextMessage(t)

	loopback := netip.MustParseAddr("::1")
	if got := addrIP(r.conn.RemoteAddr()); got != loopback {
		t.Errorf("remote address %v, want ::1", r.conn.RemoteAddr())
	}
	if src, err := netip.ParseAddrPort(r.msg.Source()); err != nil || src.Addr() != loopback {
		t.Errorf("message source %q, want [::1]:port", r.msg.Source())
	}
	// One connection per address: a second from ::1 is refused, while one
	// from 127.0.0.1 is not.
	expectClosedAtOnce(t, url[len("ws://"):])
	dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	if n := ts.srv.Refusals()["conns_per_ip"]; n != 1 {
		t.Errorf("conns_per_ip refusals = %d, want 1", n)
	}
}
