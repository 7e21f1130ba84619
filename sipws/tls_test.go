package sipws

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/testcert"
)

// tlsTestConfig is testConfig with a fresh certificate; pool trusts it.
func tlsTestConfig(t *testing.T) (configs.WS, *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool := selfSignedCert(t)
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	return cfg, pool
}

func wssDialer(pool *x509.CertPool) *websocket.Dialer {
	return &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: waitFor}
}

// peerCN is the common name of the certificate the WSS server showed.
func peerCN(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	tc, ok := ws.UnderlyingConn().(*tls.Conn)
	if !ok {
		t.Fatalf("%T is not TLS", ws.UnderlyingConn())
	}
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestWSAndWSSAtOnce: one server, a WS and a WSS listener, one registry;
// each connection knows its transport and its replies come back on it.
func TestWSAndWSSAtOnce(t *testing.T) {
	cfg, pool := tlsTestConfig(t)
	ts := startServer(t, cfg)
	ts.handler.onMessage = func(c *Conn, msg sip.Message) {
		_ = c.WriteMessage(sip.NewResponseFromRequest(msg.(*sip.Request), 200, c.Transport(), nil))
	}
	tests := []struct {
		name   string
		dialer *websocket.Dialer
		url    string
		want   string
	}{
		{name: "ws", dialer: websocket.DefaultDialer, url: ts.wsURL, want: "WS"},
		{name: "wss", dialer: wssDialer(pool), url: ts.url, want: "WSS"},
	}
	flows := map[string]bool{}
	clients := map[string]*websocket.Conn{}
	for _, tt := range tests { // all open at once, beyond each subtest
		clients[tt.name] = dial(t, tt.dialer, tt.url, sipHeader(""))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := clients[tt.name]
			send(t, ws, websocket.TextMessage, registerMsg)
			got := ts.handler.nextMessage(t)
			if got.conn.Transport() != tt.want || got.msg.Transport() != tt.want {
				t.Errorf("transport = %q / %q, want %s", got.conn.Transport(), got.msg.Transport(), tt.want)
			}
			if c, ok := ts.srv.Lookup(got.conn.Flow()); !ok || c != got.conn {
				t.Errorf("Lookup(%s) = %v, %v", got.conn.Flow(), c, ok)
			}
			flows[got.conn.Flow()] = true
			_, msg := readSIP(t, ws)
			if resp, ok := msg.(*sip.Response); !ok || resp.Reason != tt.want {
				t.Errorf("reply %q came back on the wrong connection", msg.String())
			}
		})
	}
	if n := ts.srv.Len(); n != 2 || len(flows) != 2 {
		t.Errorf("Len = %d with %d flows, want 2", n, len(flows))
	}
}

func TestServeTLSWithoutCertificate(t *testing.T) {
	srv, err := NewServer(testConfig(), newRecordingHandler(), zap.NewNop())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := srv.ServeTLS(l); !errors.Is(err, errNoTLS) {
		t.Errorf("ServeTLS = %v, want errNoTLS", err)
	}
	if err := srv.ReloadCertificate(); !errors.Is(err, errNoTLS) {
		t.Errorf("ReloadCertificate = %v, want errNoTLS", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestTLSPolicy: tls.min_version and tls.cipher_suites hold at the WSS
// handshake.
func TestTLSPolicy(t *testing.T) {
	ecdsa128 := tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	ecdsa256 := tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
	tests := []struct {
		name   string
		policy configs.TLS
		client *tls.Config
		wantOK bool
	}{
		{name: "default takes 1.2", policy: configs.TLS{MinVersion: "1.2"}, client: &tls.Config{MaxVersion: tls.VersionTLS12}, wantOK: true},
		{name: "default takes 1.3", policy: configs.TLS{MinVersion: "1.2"}, client: &tls.Config{MinVersion: tls.VersionTLS13}, wantOK: true},
		{name: "1.3 refuses 1.2", policy: configs.TLS{MinVersion: "1.3"}, client: &tls.Config{MaxVersion: tls.VersionTLS12}},
		{name: "1.3 takes 1.3", policy: configs.TLS{MinVersion: "1.3"}, client: &tls.Config{MinVersion: tls.VersionTLS13}, wantOK: true},
		{name: "listed suite", policy: configs.TLS{MinVersion: "1.2", CipherSuites: []string{tls.CipherSuiteName(ecdsa128)}},
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{ecdsa256, ecdsa128}}, wantOK: true},
		{name: "unlisted suite", policy: configs.TLS{MinVersion: "1.2", CipherSuites: []string{tls.CipherSuiteName(ecdsa128)}},
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{ecdsa256}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, pool := tlsTestConfig(t)
			ts := startServer(t, cfg, WithTLSPolicy(tt.policy))
			client := tt.client.Clone()
			client.RootCAs = pool
			d := &websocket.Dialer{TLSClientConfig: client, HandshakeTimeout: waitFor}
			ws, _, err := d.Dial(ts.url, sipHeader(""))
			if err == nil {
				_ = ws.Close()
			}
			if (err == nil) != tt.wantOK {
				t.Errorf("dial: %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
	t.Run("bad policy", func(t *testing.T) {
		cfg, _ := tlsTestConfig(t)
		if _, err := NewServer(cfg, newRecordingHandler(), zap.NewNop(), WithTLSPolicy(configs.TLS{MinVersion: "1.0"})); err == nil {
			t.Error("NewServer took TLS 1.0")
		}
	})
}

// TestCertificateReload: after a reload a new handshake sees the new
// certificate and an open connection carries on; a bad file keeps the
// current pair.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := x509.NewCertPool()
	pool.AddCert(testcert.Write(t, cfg.TLSCert, cfg.TLSKey, "first"))
	ts := startServer(t, cfg)

	old := dial(t, wssDialer(pool), ts.url, sipHeader(""))
	send(t, old, websocket.TextMessage, registerMsg)
	oldConn := ts.handler.nextMessage(t).conn
	if cn := peerCN(t, old); cn != "first" {
		t.Fatalf("first handshake saw %q", cn)
	}

	pool.AddCert(testcert.Write(t, cfg.TLSCert, cfg.TLSKey, "second"))
	if err := ts.srv.ReloadCertificate(); err != nil {
		t.Fatalf("ReloadCertificate: %v", err)
	}
	if cn := peerCN(t, dial(t, wssDialer(pool), ts.url, sipHeader(""))); cn != "second" {
		t.Errorf("after reload a new handshake saw %q, want second", cn)
	}

	testcert.Replace(t, cfg.TLSCert, []byte("not a certificate"))
	if err := ts.srv.ReloadCertificate(); err == nil {
		t.Error("ReloadCertificate took a broken file")
	}
	if cn := peerCN(t, dial(t, wssDialer(pool), ts.url, sipHeader(""))); cn != "second" {
		t.Errorf("after a failed reload a new handshake saw %q, want second", cn)
	}

	// The first connection never noticed.
	send(t, old, websocket.TextMessage, registerMsg)
	if got := ts.handler.nextMessage(t); got.conn != oldConn {
		t.Error("the old connection's message came from another connection")
	}
	select {
	case <-oldConn.Done():
		t.Error("the old connection closed")
	default:
	}
}

// corkConn holds what is written while corked and sends it in one write
// on uncork, so several TLS records reach the server in one segment.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	held   []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// dialCorked opens a WSS connection whose TLS records can be held back
// and sent together.
func dialCorked(t *testing.T, url string, pool *x509.CertPool) (*websocket.Conn, *corkConn) {
	t.Helper()
	var cc *corkConn
	d := &websocket.Dialer{HandshakeTimeout: waitFor,
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc = &corkConn{Conn: raw}
			tc := tls.Client(cc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		}}
	return dial(t, d, url, sipHeader("")), cc
}

// callIDs are distinct REGISTERs, one per Call-ID.
func callIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "c" + strings.Repeat("y", i+1)
	}
	return out
}

func withCallID(id string) string { return strings.Replace(registerMsg, "aiuy7k9njasd", id, 1) }
