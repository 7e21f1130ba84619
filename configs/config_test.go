package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every example file shipped in configs/examples loads and validates.
func TestExamplesValidate(t *testing.T) {
	t.Chdir("..") // the examples name files from the repository root
	files, err := filepath.Glob("configs/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEmbeddedDefault(t *testing.T) {
	cfg, err := Parse([]byte(DefaultYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Demo.Enabled || !cfg.WS.WebPhone {
		t.Fatalf("embedded default must run the demo core and the web phone: %+v", cfg)
	}
	if cfg.WS.PingInterval != 30*time.Second || cfg.Media.RTPPorts != "20000-20999" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	_, err := Parse([]byte(""))
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "upstream.proxy" {
		t.Fatalf("empty config: got %v, want upstream.proxy required", err)
	}
}

// A bad config names the key that is wrong.
func TestValidateNamesTheKey(t *testing.T) {
	base := "upstream:\n  proxy: sip:127.0.0.1:5060\n"
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"bad ws listen", "ws:\n  listen: nonsense\n", "ws.listen"},
		{"bad path", "ws:\n  path: sip\n", "ws.path"},
		{"cert without tls_listen", "ws:\n  tls_cert: /x.pem\n", "ws.tls_listen"},
		{"missing cert file", "ws:\n  tls_listen: :8443\n  tls_cert: /nonexistent.pem\n  tls_key: /nonexistent.key\n", "ws.tls_cert"},
		{"bad origin", "ws:\n  origins: [example.com]\n", "ws.origins[0]"},
		{"tiny max message", "ws:\n  max_message_bytes: 10\n", "ws.max_message_bytes"},
		{"idle below ping", "ws:\n  ping_interval: 30s\n  idle_timeout: 10s\n", "ws.idle_timeout"},
		{"bad sip listen", "sip:\n  listen: 5060\n", "sip.listen"},
		{"bad transport", "sip:\n  transport: sctp\n", "sip.transport"},
		{"bad public ip", "media:\n  public_ip: example.com\n", "media.public_ip"},
		{"bad rtp range", "media:\n  rtp_ports: \"30000\"\n", "media.rtp_ports"},
		{"reversed rtp range", "media:\n  rtp_ports: \"30000-20000\"\n", "media.rtp_ports"},
		{"webrtc port in rtp range", "media:\n  webrtc_port: 20002\n  rtp_ports: \"20000-20999\"\n", "media.webrtc_port"},
		{"unknown codec", "media:\n  codecs: [PCMU, AMR]\n", "media.codecs[1]"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"bad demo listen", "demo:\n  enabled: true\n  listen: x\n", "demo.listen"},
		{"bad dtmf to_web", "dtmf:\n  to_web: rtp\n", "dtmf.to_web"},
		{"bad dtmf to_core", "dtmf:\n  to_core: tones\n", "dtmf.to_core"},
		{"no subscriptions", "presence:\n  max_subscriptions: 0\n", "presence.max_subscriptions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.yaml))
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("got %v, want a KeyError for %s", err, tc.key)
			}
			if ke.Key != tc.key {
				t.Fatalf("key = %s (%v), want %s", ke.Key, err, tc.key)
			}
		})
	}
	t.Run("bad proxy", func(t *testing.T) {
		_, err := Parse([]byte("upstream:\n  proxy: http://x\n"))
		if err == nil || !strings.Contains(err.Error(), "upstream.proxy") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := Parse([]byte(base + "ws:\n  listne: 1.2.3.4:5\n"))
		if err == nil || !strings.Contains(err.Error(), "listne") {
			t.Fatalf("got %v, want the unknown key named", err)
		}
	})
}

func TestParseProxy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Proxy
	}{
		{"sip:pcscf.example.net:5060;transport=tcp", Proxy{"pcscf.example.net", 5060, "tcp"}},
		{"sip:10.0.0.1", Proxy{"10.0.0.1", 5060, ""}},
		{"sip:[::1]:5070;transport=UDP", Proxy{"::1", 5070, "udp"}},
		{"sip:gw@core.example:5080;lr", Proxy{"core.example", 5080, ""}},
	} {
		got, err := ParseProxy(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseProxy(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "pcscf:5060", "sip:", "sip:x:99999", "sip:x;transport=sctp"} {
		if _, err := ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) accepted", bad)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}
