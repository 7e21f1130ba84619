package edge

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/testcert"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile, "edge.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// stunBinding is a STUN Binding request header with no attributes.
var stunBinding = []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func startEdge(t *testing.T, cfg Config) *Edge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := New(ln, cfg, zap.NewNop())
	done := make(chan error, 1)
	go func() { done <- e.Serve() }()
	t.Cleanup(func() {
		e.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// accept takes one connection from l, or fails.
func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			got <- c
		}
	}()
	select {
	case c := <-got:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(3 * time.Second):
		t.Fatal("nothing reached the service")
		return nil
	}
}

func TestRoutes(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the others
	cert := testCert(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	e := startEdge(t, Config{TLS: serverTLS, WS: true, WSS: true, TURN: true, TURNTLS: true, ICETCP: true})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// readAll reads want's length from c.
	expect := func(c net.Conn, want []byte) {
		t.Helper()
		got := make([]byte, len(want))
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("service read %q (%v), want %q", got, err, want)
		}
	}
	t.Run("plain websocket", func(t *testing.T) {
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		dial().Write(req)
		expect(accept(t, e.WS()), req)
	})
	t.Run("turn over tcp", func(t *testing.T) {
		dial().Write(stunBinding)
		expect(accept(t, e.TURN()), stunBinding)
	})
	t.Run("ice-tcp", func(t *testing.T) {
		frame := append([]byte{0, byte(len(stunBinding))}, stunBinding...)
		dial().Write(frame)
		expect(accept(t, e.ICETCP()), frame)
	})
	tlsCases := []struct {
		name string
		alpn []string
		svc  func() net.Listener
		// done: the service does the TLS itself (the edge handed it the
		// raw connection), or the edge did it.
		serviceDoesTLS bool
		first          []byte
	}{
		{"wss with alpn", []string{"http/1.1"}, e.WSS, true, []byte("GET / HTTP/1.1\r\n\r\n")},
		{"turn tls with alpn", []string{"stun.turn"}, e.TURNTLS, true, stunBinding},
		{"turn tls without alpn", nil, e.TURNTerminated, false, stunBinding},
		{"wss without alpn", nil, e.WSSTerminated, false, []byte("GET / HTTP/1.1\r\n\r\n")},
	}
	for _, tc := range tlsCases {
		t.Run(tc.name, func(t *testing.T) {
			client := tls.Client(dial(), &tls.Config{InsecureSkipVerify: true, NextProtos: tc.alpn})
			sent := make(chan error, 1)
			go func() {
				_, err := client.Write(tc.first)
				sent <- err
			}()
			svc := accept(t, tc.svc())
			if tc.serviceDoesTLS {
				svc = tls.Server(svc, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: tc.alpn})
			} else if _, ok := svc.(interface{ ConnectionState() tls.ConnectionState }); !ok {
				t.Fatal("a terminated connection does not say it is TLS")
			}
			expect(svc, tc.first)
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			// And back the other way.
			svc.Write([]byte("ok"))
			expect(client, []byte("ok"))
		})
	}
	byKind, _ := e.Counts()
	for _, k := range []Kind{KindWS, KindTURN, KindICETCP, KindWSS, KindTURNTLS} {
		if byKind[k] == 0 {
			t.Errorf("no %s counted: %v", k, byKind)
		}
	}
}

func TestRefused(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the others
	e := startEdge(t, Config{WS: true, ClassifyTimeout: 200 * time.Millisecond})
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"garbage", []byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6}},
		{"silent", nil},
		{"too short then silent", []byte("GE")},
		{"turn with no service", stunBinding},
		{"tls without alpn and no certificate", []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.send)
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("read %d bytes, want the connection closed", n)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection left open")
			}
		})
	}
	if _, closed := e.Counts(); closed < 5 {
		t.Fatalf("closed %d, want 5", closed)
	}
}

func TestMaxPending(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the others
	e := startEdge(t, Config{WS: true, MaxPending: 2, ClassifyTimeout: 2 * time.Second})
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond) // both are being classified
	c, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || func() bool { ne, ok := err.(net.Error); return ok && ne.Timeout() }() {
		t.Fatalf("third silent connection: %v, want it closed at once", err)
	}
}

func TestClassify(t *testing.T) {
	frame := append([]byte{0, 20}, stunBinding...)
	for _, tc := range []struct {
		name string
		b    []byte
		want Kind
	}{
		{"http", []byte("GET / HTTP/1.1"), KindWS},
		{"tls", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03}, KindTLS},
		{"stun", stunBinding, KindTURN},
		{"allocate", append([]byte{0x00, 0x03}, stunBinding[2:]...), KindTURN},
		{"framed stun", frame, KindICETCP},
		{"rtp", []byte{0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, KindUnknown},
		{"lowercase", []byte("get / http"), KindUnknown},
	} {
		if got := classify(tc.b); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(stunBinding)
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < peekLen {
			return
		}
		_ = classify(b)
	})
}

// One source may have maxPendingPerSource connections being classified;
// one more is closed at once while another source still gets in.
func TestPendingPerSource(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // first registered: runs after the others
	e := startEdge(t, Config{WS: true, ClassifyTimeout: 3 * time.Second})
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range maxPendingPerSource {
		dial("127.0.0.1")
	}
	time.Sleep(100 * time.Millisecond) // all of them are being classified
	over := dial("127.0.0.1")
	_ = over.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := over.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection past the source's limit: %v, want it closed at once", err)
	}
	other := dial("127.0.0.2")
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	other.Write(req)
	c := accept(t, e.WS())
	got := make([]byte, len(req))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("another source: %v", err)
	}
}
