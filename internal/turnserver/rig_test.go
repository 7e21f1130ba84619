package turnserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/testcert"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const (
	testRealm  = "imsgate.test"
	testSecret = "rest-secret"
	// Relay ports of the tests: fixed, so a relay outside them is a bug,
	// and away from the ranges the repository's other tests use.
	testPortMin = 47100
	testPortMax = 47199
)

var loopbackPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// rig is a server on 127.0.0.1 (UDP, TCP, TLS) with users alice and bob,
// REST credentials, and loopback peers allowed unless the test says.
type rig struct {
	t     *testing.T
	srv   *Server
	roots *x509.CertPool
}

func newRig(t *testing.T, edit func(*Config), editLimits func(*limits)) *rig {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	leaf := testcert.Write(t, certFile, keyFile, "turn.imsgate.test")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	cfg := Config{
		Listen:       "127.0.0.1:0",
		TLSListen:    "127.0.0.1:0",
		TLS:          &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12},
		Realm:        testRealm,
		Users:        map[string]string{"alice": "alice-pass", "bob": "bob-pass"},
		Secret:       testSecret,
		RelayIP:      "127.0.0.1",
		RelayPortMin: testPortMin,
		RelayPortMax: testPortMax,
		AllowedPeers: loopbackPeers,
		Software:     "imsgate-test",
	}
	if edit != nil {
		edit(&cfg)
	}
	lim := defaultLimits()
	if editLimits != nil {
		editLimits(&lim)
	}
	srv, err := newServer(cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &rig{t: t, srv: srv, roots: roots}
}

// dial is a client socket to the server over tr: a UDP socket, or a TCP
// or TLS connection framed by pion's STUNConn; closed at cleanup.
func (r *rig) dial(tr Transport) (net.PacketConn, net.Addr) {
	r.t.Helper()
	a := r.srv.Addrs()
	var conn net.PacketConn
	var server net.Addr
	switch tr {
	case TransportUDP:
		pc, err := net.ListenPacket("udp", net.JoinHostPort(a.UDP.Addr().String(), "0"))
		if err != nil {
			r.t.Fatal(err)
		}
		conn, server = pc, net.UDPAddrFromAddrPort(a.UDP)
	case TransportTCP:
		c, err := net.Dial("tcp", a.TCP.String())
		if err != nil {
			r.t.Fatal(err)
		}
		conn, server = turn.NewSTUNConn(c), c.RemoteAddr()
	case TransportTLS:
		c, err := tls.Dial("tcp", a.TLS.String(), &tls.Config{RootCAs: r.roots, ServerName: "127.0.0.1", NextProtos: []string{alpnTURN}, MinVersion: tls.VersionTLS12})
		if err != nil {
			r.t.Fatal(err)
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != alpnTURN {
			r.t.Errorf("ALPN %q, want %q", p, alpnTURN)
		}
		conn, server = turn.NewSTUNConn(c), c.RemoteAddr()
	default:
		r.t.Fatalf("transport %v", tr)
	}
	r.t.Cleanup(func() { _ = conn.Close() })
	return conn, server
}

// client is pion's TURN client over tr, listening; closed at cleanup.
func (r *rig) client(tr Transport, user, pass string) *turn.Client {
	r.t.Helper()
	conn, server := r.dial(tr)
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server.String(),
		TURNServerAddr: server.String(),
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          testRealm,
		LoggerFactory:  quietPion{},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(c.Close) // before conn's cleanup: cleanups run last first
	return c
}

// allocate allocates on c and closes the relay at cleanup.
func (r *rig) allocate(c *turn.Client) net.PacketConn {
	r.t.Helper()
	relay, err := c.Allocate()
	if err != nil {
		r.t.Fatalf("allocate: %v", err)
	}
	r.t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// peer is a UDP socket on loopback; closed at cleanup.
func (r *rig) peer() net.PacketConn {
	r.t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// echo relays one datagram to peer through relay and one back. Neither
// is 4 bytes or less: pion's STUNConn (both ends of TCP and TLS) holds a
// frame shorter than 9 bytes, an 8-byte ChannelData, until more bytes
// come (pion/turn v5.1.3 internal/proto/stun_conn.go).
func echo(t *testing.T, relay, peer net.PacketConn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	_ = relay.SetReadDeadline(deadline)
	_ = peer.SetReadDeadline(deadline)
	if _, err := relay.WriteTo([]byte("ping from client"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 1500)
	n, from, err := peer.ReadFrom(buf)
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	if string(buf[:n]) != "ping from client" {
		t.Fatalf("peer got %q", buf[:n])
	}
	if from.String() != relayBound(relay).String() {
		t.Errorf("peer heard from %v, relay is %v", from, relay.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("pong from peer"), from); err != nil {
		t.Fatalf("peer write: %v", err)
	}
	n, from, err = relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("relay read: %v", err)
	}
	if string(buf[:n]) != "pong from peer" || from.String() != peer.LocalAddr().String() {
		t.Fatalf("relay got %q from %v", buf[:n], from)
	}
}

// relayBound is where a relay's socket is: its advertised address with
// the loopback IP the tests' relays bind on.
func relayBound(relay net.PacketConn) net.Addr {
	a := relay.LocalAddr().(*net.UDPAddr)
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.Port}
}

// turnCode is the STUN error code of a pion client error, 0 if none.
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// eventually waits for cond, polling, for up to 5 s: pion deletes an
// allocation on a Refresh the client does not wait for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// quietPion keeps pion's client logs out of the test output.
type quietPion struct{}

func (quietPion) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, nil)
}
