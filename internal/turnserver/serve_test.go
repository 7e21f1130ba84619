package turnserver

import (
	"context"
	"crypto/tls"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/testcert"
	"go.uber.org/zap"
)

// TestServe runs the server on fixed loopback ports for coturn's
// turnutils_uclient and the CPU comparison of docs/TURN-BENCH.md, until
// the duration in IMSGATE_TURN_SERVE passes or SIGINT/SIGTERM comes:
//
//	go test -c -o /tmp/turnserver.test ./internal/turnserver
//	IMSGATE_TURN_SERVE=30m /tmp/turnserver.test -test.run TestServe -test.v
//
// UDP and TCP on 127.0.0.1:3479, TLS on 5350 (a fresh self-signed
// certificate), realm imsgate.test, user "user" password "pass", REST
// secret "north", loopback peers allowed.
func TestServe(t *testing.T) {
	d := os.Getenv("IMSGATE_TURN_SERVE")
	if d == "" {
		t.Skip("set IMSGATE_TURN_SERVE to a duration to run a server for turnutils_uclient")
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("IMSGATE_TURN_SERVE: %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile, "turn.imsgate.test")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	log, err := zap.NewProduction()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Listen:       "127.0.0.1:3479",
		TLSListen:    "127.0.0.1:5350",
		TLS:          &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		Realm:        "imsgate.test",
		Users:        map[string]string{"user": "pass"},
		Secret:       "north",
		RelayIP:      "127.0.0.1",
		AllowedPeers: loopbackPeers,
		QuotaPerUser: 1000,
		Software:     "imsgate",
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pid %d serving %+v until %s", os.Getpid(), srv.Addrs(), time.Now().Add(dur).Format(time.TimeOnly))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(dur):
	}
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
	t.Logf("stats %+v", srv.Stats())
}
