package configs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// keyPair writes a self-signed certificate and its key (ecdsa or rsa) to
// dir and returns their paths.
func keyPair(t *testing.T, dir, kind string) (certFile, keyFile string) {
	t.Helper()
	var key crypto.Signer
	var err error
	if kind == "rsa" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "configs test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, kind+"-cert.pem"), filepath.Join(dir, kind+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestWSListenersAndTLS(t *testing.T) {
	dir := t.TempDir()
	ecCert, ecKey := keyPair(t, dir, "ecdsa")
	rsaCert, rsaKey := keyPair(t, dir, "rsa")
	pair := func(cert, key string) string { return fmt.Sprintf("  tls_cert: %s\n  tls_key: %s\n", cert, key) }
	wss := func(cert, key string) string { return "  tls_listen: 127.0.0.1:8443\n" + pair(cert, key) }
	const base = "upstream:\n  proxy: sip:127.0.0.1:5060\n"
	tests := []struct {
		name    string
		yaml    string
		wantKey string // empty: valid
		check   func(t *testing.T, cfg Config)
	}{
		{name: "ws only (default)", check: func(t *testing.T, cfg Config) {
			if cfg.WS.Listen == "" || cfg.WS.TLSListen != "" || cfg.TLS.MinVersion != "1.2" {
				t.Errorf("defaults: %+v %+v", cfg.WS, cfg.TLS)
			}
		}},
		{name: "wss only", yaml: "ws:\n  listen: \"\"\n" + wss(ecCert, ecKey)},
		{name: "ws and wss", yaml: "ws:\n  listen: 127.0.0.1:8080\n" + wss(rsaCert, rsaKey)},
		{name: "both on any free port", yaml: "ws:\n  listen: 127.0.0.1:0\n  tls_listen: 127.0.0.1:0\n" + pair(ecCert, ecKey)},
		{name: "tls 1.3", yaml: "tls:\n  min_version: \"1.3\"\nws:\n" + wss(ecCert, ecKey)},
		{name: "suites fit the ecdsa key",
			yaml: "tls:\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\nws:\n" + wss(ecCert, ecKey)},
		{name: "no listener", yaml: "ws:\n  listen: \"\"\n", wantKey: "ws.listen"},
		{name: "cert and key but no tls_listen", yaml: "ws:\n" + pair(ecCert, ecKey), wantKey: "ws.tls_listen"},
		{name: "bad tls_listen", yaml: "ws:\n  tls_listen: nonsense\n", wantKey: "ws.tls_listen"},
		{name: "tls_listen is listen", yaml: "ws:\n  listen: 127.0.0.1:8443\n" + wss(ecCert, ecKey), wantKey: "ws.tls_listen"},
		{name: "tls_listen without cert", yaml: "ws:\n  tls_listen: 127.0.0.1:8443\n", wantKey: "ws.tls_cert"},
		{name: "tls_listen without key", yaml: fmt.Sprintf("ws:\n  tls_listen: 127.0.0.1:8443\n  tls_cert: %s\n", ecCert), wantKey: "ws.tls_key"},
		{name: "missing key file", yaml: "ws:\n" + wss(ecCert, filepath.Join(dir, "none.pem")), wantKey: "ws.tls_key"},
		{name: "key of another cert", yaml: "ws:\n" + wss(ecCert, rsaKey), wantKey: "ws.tls_cert"},
		{name: "tls 1.1", yaml: "tls:\n  min_version: \"1.1\"\n", wantKey: "tls.min_version"},
		{name: "min version as number", yaml: "tls:\n  min_version: 1.3\n", wantKey: ""},
		{name: "insecure suite", yaml: "tls:\n  cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]\n", wantKey: "tls.cipher_suites[0]"},
		{name: "unknown suite", yaml: "tls:\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, AES128]\n", wantKey: "tls.cipher_suites[1]"},
		{name: "tls 1.3 suite", yaml: "tls:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", wantKey: "tls.cipher_suites[0]"},
		{name: "suites with tls 1.3", yaml: "tls:\n  min_version: \"1.3\"\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n", wantKey: "tls.cipher_suites"},
		{name: "suites unfit for the key",
			yaml: "tls:\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\nws:\n" + wss(ecCert, ecKey), wantKey: "tls.cipher_suites"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base + tt.yaml))
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tt.check != nil {
					tt.check(t, cfg)
				}
				return
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.wantKey {
				t.Fatalf("got %v, want a KeyError for %s", err, tt.wantKey)
			}
		})
	}
}

func TestTLSServerConfig(t *testing.T) {
	tests := []struct {
		name       string
		tls        TLS
		wantMin    uint16
		wantSuites []uint16
	}{
		{name: "defaults", tls: TLS{MinVersion: "1.2"}, wantMin: tls.VersionTLS12},
		{name: "tls 1.3", tls: TLS{MinVersion: "1.3"}, wantMin: tls.VersionTLS13},
		{name: "suites in order", tls: TLS{MinVersion: "1.2", CipherSuites: []string{
			"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}},
			wantMin:    tls.VersionTLS12,
			wantSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.tls.ServerConfig()
			if err != nil {
				t.Fatal(err)
			}
			if c.MinVersion != tt.wantMin || !slices.Equal(c.CipherSuites, tt.wantSuites) {
				t.Errorf("got min %x suites %x, want %x %x", c.MinVersion, c.CipherSuites, tt.wantMin, tt.wantSuites)
			}
			if len(c.Certificates) != 0 || c.GetCertificate != nil {
				t.Error("the policy carries a certificate")
			}
		})
	}
}
