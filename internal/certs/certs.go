// Package certs holds the key pairs of imsgate's TLS listeners (WSS toward
// browsers, SIP over TLS toward the core), re-read on SIGHUP without
// dropping a connection: handshakes read the pair through GetCertificate,
// so a reload changes what new connections see and leaves open ones alone.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/imsgate/imsgate/configs"
)

// Store is one listener's key pair.
type Store struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// NewStore reads the pair; an unreadable one is an error.
func NewStore(certFile, keyFile string) (*Store, error) {
	st := &Store{certFile: certFile, keyFile: keyFile}
	if _, err := st.Reload(); err != nil {
		return nil, err
	}
	return st, nil
}

// Reload reads the files again and returns the new certificate; on any
// error the current pair stays.
func (st *Store) Reload() (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(st.certFile, st.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls key pair %s, %s: %w", st.certFile, st.keyFile, err)
	}
	// LoadX509KeyPair fills Leaf (Go 1.23+); the log wants its dates.
	st.cur.Store(&cert)
	return cert.Leaf, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (st *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return st.cur.Load(), nil
}

// ServerConfig is the tls policy completed with the store's pair.
func ServerConfig(policy configs.TLS, st *Store) (*tls.Config, error) {
	cfg, err := policy.ServerConfig()
	if err != nil {
		return nil, err
	}
	cfg.GetCertificate = st.GetCertificate
	return cfg, nil
}

// ClientConfig is the policy for connections the gateway opens (SIP over
// TLS to the core): the peer verified against caFile's certificates, or
// the system's roots when it is empty.
func ClientConfig(policy configs.TLS, caFile string) (*tls.Config, error) {
	cfg, err := policy.ServerConfig()
	if err != nil {
		return nil, err
	}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("upstream.tls_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstream.tls_ca: %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
