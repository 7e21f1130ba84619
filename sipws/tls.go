package sipws

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
)

// WithTLSPolicy sets the TLS version and cipher suites of the WSS listener
// (the tls config section); without it the defaults of configs apply.
func WithTLSPolicy(p configs.TLS) Option {
	return func(s *Server) { s.tlsPolicy = p }
}

// certStore holds the WSS key pair. Handshakes read it through
// GetCertificate, so a reload changes what new connections see and leaves
// the open ones (whose handshakes are done) alone.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func newCertStore(certFile, keyFile string) (*certStore, error) {
	st := &certStore{certFile: certFile, keyFile: keyFile}
	if _, err := st.reload(); err != nil {
		return nil, err
	}
	return st, nil
}

// reload reads the files again; on any error the current pair stays.
func (st *certStore) reload() (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(st.certFile, st.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load ws tls key pair %s, %s: %w", st.certFile, st.keyFile, err)
	}
	// LoadX509KeyPair fills Leaf (Go 1.23+); the log wants its dates.
	st.cur.Store(&cert)
	return cert.Leaf, nil
}

func (st *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return st.cur.Load(), nil
}

// tlsConfig builds the WSS listener's config from the policy and the store.
func (s *Server) tlsConfig() (*tls.Config, error) {
	st, err := newCertStore(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return nil, err
	}
	cfg, err := s.tlsPolicy.ServerConfig()
	if err != nil {
		return nil, fmt.Errorf("ws tls policy: %w", err)
	}
	s.certs = st
	// No NextProtos: without ALPN "h2" net/http speaks HTTP/1.1, which a
	// WebSocket upgrade needs (RFC 6455 section 4.1).
	cfg.GetCertificate = st.getCertificate
	return cfg, nil
}

// ReloadCertificate re-reads ws.tls_cert and ws.tls_key (on SIGHUP). New
// handshakes get the new pair; open connections keep theirs. On error the
// old pair stays in use and the error says why.
func (s *Server) ReloadCertificate() error {
	if s.certs == nil {
		return fmt.Errorf("reload ws certificate: %w", errNoTLS)
	}
	leaf, err := s.certs.reload()
	if err != nil {
		return fmt.Errorf("reload ws certificate: %w", err)
	}
	if leaf != nil {
		s.log.Info("ws certificate loaded", zap.String("subject", leaf.Subject.String()),
			zap.Time("not_after", leaf.NotAfter), zap.Duration("valid_for", time.Until(leaf.NotAfter).Round(time.Hour)))
	}
	return nil
}

// ServeTLS accepts HTTPS and WSS on l until Shutdown, then returns
// http.ErrServerClosed. It may run beside Serve: both feed one registry.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tls == nil {
		return fmt.Errorf("serve wss: %w", errNoTLS)
	}
	return s.serve(tls.NewListener(l, s.tls), "serve wss")
}
