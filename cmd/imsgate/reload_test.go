package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/testcert"
)

// TestSIGHUPReloadsCertificate: the gateway serves WS and WSS at once;
// SIGHUP makes new WSS handshakes see a replaced certificate, a broken
// file keeps the current one, and a WSS connection opened before both
// reloads stays open and answered throughout.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := x509.NewCertPool()
	pool.AddCert(testcert.Write(t, certFile, keyFile, "first"))
	cfg := configs.Default()
	cfg.WS.Listen, cfg.WS.TLSListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.WS.TLSCert, cfg.WS.TLSKey = certFile, keyFile
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Upstream.Proxy = "sip:127.0.0.1:9"
	cfg.Media.WebRTCPort = 0
	cfg.Media.RTPPorts = "44200-44299"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	a, err := start(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done, stopped := make(chan struct{}), make(chan os.Signal, 1)
	go func() { stopped <- a.waitStop(sigs, done) }()
	defer func() {
		close(done)
		if sig := <-stopped; sig != nil {
			t.Errorf("waitStop returned %v, want nil", sig)
		}
	}()

	dialer := &websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second,
		TLSClientConfig: &tls.Config{RootCAs: pool}}
	dialCN := func(t *testing.T) (*websocket.Conn, string) {
		t.Helper()
		ws, _, err := dialer.Dial("wss://"+a.WSSAddr()+"/", nil)
		if err != nil {
			t.Fatalf("dial wss: %v", err)
		}
		return ws, ws.UnderlyingConn().(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	old, cn := dialCN(t)
	defer old.Close()
	if cn != "first" {
		t.Fatalf("first handshake saw %q", cn)
	}
	plain, _, err := dialer.Dial("ws://"+a.WSAddr()+"/", nil)
	if err != nil {
		t.Fatalf("dial ws beside wss: %v", err)
	}
	defer plain.Close()

	steps := []struct {
		name    string
		write   func()
		wantLog string
		wantCN  string
	}{
		{name: "new pair", write: func() { pool.AddCert(testcert.Write(t, certFile, keyFile, "second")) },
			wantLog: "ws certificate loaded", wantCN: "second"},
		{name: "broken file keeps the pair", write: func() { testcert.Replace(t, certFile, []byte("garbage")) },
			wantLog: "certificate reload failed; the old certificate stays in use", wantCN: "second"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			seen := logs.FilterMessage(st.wantLog).Len()
			st.write()
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for logs.FilterMessage(st.wantLog).Len() == seen {
				if time.Now().After(deadline) {
					t.Fatalf("no %q logged after SIGHUP", st.wantLog)
				}
				time.Sleep(time.Millisecond)
			}
			ws, cn := dialCN(t)
			ws.Close()
			if cn != st.wantCN {
				t.Errorf("new handshake saw %q, want %q", cn, st.wantCN)
			}
		})
	}

	// The connections from before carry on: the gateway answers their
	// RFC 5626 keepalives.
	for name, ws := range map[string]*websocket.Conn{"wss": old, "ws": plain} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("\r\n\r\n")); err != nil {
			t.Fatalf("%s: write keepalive: %v", name, err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, data, err := ws.ReadMessage(); err != nil || string(data) != "\r\n" {
			t.Errorf("%s: keepalive answer = %q, %v; want CRLF", name, data, err)
		}
	}
}
