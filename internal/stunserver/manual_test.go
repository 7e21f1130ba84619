package stunserver

import (
	"os"
	"os/signal"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestServeManually runs a server for trying real clients by hand, only
// when STUNSERVER_SERVE is set to listen[,alternate_ip[,seconds]], e.g.
//
//	STUNSERVER_SERVE=127.0.0.1:3478,127.0.0.2,60 go test -run TestServeManually -v ./internal/stunserver/
//
// then stun 127.0.0.1:3478 -v or turnutils_natdiscovery -m -f -p 3478 127.0.0.1.
func TestServeManually(t *testing.T) {
	spec := os.Getenv("STUNSERVER_SERVE")
	if spec == "" {
		t.Skip("STUNSERVER_SERVE not set")
	}
	parts := strings.Split(spec, ",")
	cfg := Config{Listen: parts[0], Software: "imsgate"}
	if len(parts) > 1 {
		cfg.AlternateIP = parts[1]
	}
	wait := 60 * time.Second
	if len(parts) > 2 {
		d, err := time.ParseDuration(parts[2] + "s")
		if err != nil {
			t.Fatal(err)
		}
		wait = d
	}
	log, _ := zap.NewDevelopment()
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("serving %+v", s.Addrs())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	select {
	case <-time.After(wait):
	case <-sig:
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	t.Logf("stats %+v", s.Stats())
}
