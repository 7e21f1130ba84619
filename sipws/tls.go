package sipws

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/certs"
)

// WithTLSPolicy sets the TLS version and cipher suites of the WSS listener
// (the tls config section); without it the defaults of configs apply.
func WithTLSPolicy(p configs.TLS) Option {
	return func(s *Server) { s.tlsPolicy = p }
}

// tlsConfig builds the WSS listener's config from the policy and the store.
func (s *Server) tlsConfig() (*tls.Config, error) {
	st, err := certs.NewStore(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	// No NextProtos: without ALPN "h2" net/http speaks HTTP/1.1, which a
	// WebSocket upgrade needs (RFC 6455 section 4.1).
	cfg, err := certs.ServerConfig(s.tlsPolicy, st)
	if err != nil {
		return nil, fmt.Errorf("ws tls policy: %w", err)
	}
	s.certs = st
	return cfg, nil
}

// ReloadCertificate re-reads ws.tls_cert and ws.tls_key (on SIGHUP). New
// handshakes get the new pair; open connections keep theirs. On error the
// old pair stays in use and the error says why.
func (s *Server) ReloadCertificate() error {
	if s.certs == nil {
		return fmt.Errorf("reload ws certificate: %w", errNoTLS)
	}
	leaf, err := s.certs.Reload()
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
	return s.serve(tls.NewListener(s.limitListener(l), s.tls), "serve wss")
}
