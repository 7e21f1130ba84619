package turnserver

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// RelayTransport names this server's relays by the transport their client
// came over, and forgets a relay once it is released.
func TestRelayTransport(t *testing.T) {
	r := newRig(t, nil, nil)
	for _, tr := range transports {
		c := r.client(tr, "alice", "alice-pass")
		relay := r.allocate(c)
		ap := relay.LocalAddr().(*net.UDPAddr).AddrPort()
		if got, ok := r.srv.RelayTransport(ap); !ok || got != tr {
			t.Errorf("relay %v over %s: RelayTransport %v %v", ap, tr, got, ok)
		}
		_ = relay.Close()
		eventually(t, "released relay forgotten", func() bool { _, ok := r.srv.RelayTransport(ap); return !ok })
	}
	if _, ok := r.srv.RelayTransport(r.peer().LocalAddr().(*net.UDPAddr).AddrPort()); ok {
		t.Error("a peer's address taken for a relay")
	}
}

// A listener handed in (the shared port) serves TURN beside the server's
// own, its connections counted as the transport it names.
func TestStreamsHandedIn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) {
		c.Streams = []StreamListener{{Listener: ln, Transport: TransportTLS, Handshake: true}}
	}, nil)
	tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: r.roots, ServerName: "127.0.0.1", NextProtos: []string{alpnTURN}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	conn := turn.NewSTUNConn(tc)
	t.Cleanup(func() { _ = conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: ln.Addr().String(), TURNServerAddr: ln.Addr().String(), Conn: conn,
		Username: "alice", Password: "alice-pass", Realm: testRealm, LoggerFactory: quietPion{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	relay := r.allocate(c)
	echo(t, relay, r.peer())
	if st := r.srv.Stats(); st.Created.TLS != 1 {
		t.Fatalf("created %+v, want one TLS allocation", st.Created)
	}
}

// A stream is cut into frames by their own lengths: a Binding request sent
// a byte at a time is answered, and a frame longer than any TURN frame ends
// the connection at once instead of being waited for.
func TestStreamFraming(t *testing.T) {
	r := newRig(t, nil, nil)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", r.srv.Addrs().TCP.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	c := dial()
	for _, b := range req.Raw {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	head := make([]byte, 20)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatalf("Binding a byte at a time: %v", err)
	}
	if !stun.IsMessage(head) {
		t.Fatalf("answer %x is not STUN", head)
	}

	long := dial()
	if _, err := long.Write([]byte{0x00, 0x01, 0xea, 0x60}); err != nil { // a 60,000-byte Binding
		t.Fatal(err)
	}
	if _, err := long.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after an over-long frame: %v, want the connection closed", err)
	}
}
