package configs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
)

// TLS is the policy of every TLS listener the gateway serves (ws.tls_listen
// today); certificates belong to each listener's own section.
type TLS struct {
	// MinVersion is the oldest TLS version accepted: "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
	// CipherSuites are the TLS 1.2 cipher suites allowed, by their
	// crypto/tls names; empty keeps Go's defaults. TLS 1.3 suites are
	// fixed by Go and cannot be listed.
	CipherSuites []string `yaml:"cipher_suites"`
}

// ServerConfig is the policy as a tls.Config with no certificate, for a
// listener to complete with its own (GetCertificate). The errors name the
// key at fault.
func (t TLS) ServerConfig() (*tls.Config, error) {
	var version uint16
	switch t.MinVersion {
	case "1.2":
		version = tls.VersionTLS12
	case "1.3":
		version = tls.VersionTLS13
	default:
		// RFC 8996 retired TLS 1.0 and 1.1.
		return nil, keyErr("tls.min_version", "%q is not 1.2 or 1.3", t.MinVersion)
	}
	if len(t.CipherSuites) == 0 {
		return &tls.Config{MinVersion: version}, nil
	}
	if version == tls.VersionTLS13 {
		return nil, keyErr("tls.cipher_suites", "has no effect with tls.min_version 1.3 (TLS 1.3 suites are fixed): remove the list or allow 1.2")
	}
	suites := make([]uint16, 0, len(t.CipherSuites))
	for i, name := range t.CipherSuites {
		id, err := cipherSuite(name)
		if err != nil {
			return nil, keyErr(fmt.Sprintf("tls.cipher_suites[%d]", i), "%v", err)
		}
		suites = append(suites, id)
	}
	return &tls.Config{MinVersion: version, CipherSuites: suites}, nil
}

// cipherSuite finds a TLS 1.2 suite by its crypto/tls name; insecure ones
// are refused.
func cipherSuite(name string) (uint16, error) {
	for _, s := range tls.CipherSuites() {
		if s.Name != name {
			continue
		}
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			return 0, fmt.Errorf("%q is a TLS 1.3 suite, which Go always enables and does not let be chosen", name)
		}
		return s.ID, nil
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return 0, fmt.Errorf("%q is insecure (crypto/tls InsecureCipherSuites) and refused", name)
		}
	}
	return 0, fmt.Errorf("%q is not a TLS 1.2 suite of crypto/tls; one of %s", name, strings.Join(tls12Suites(), ", "))
}

// tls12Suites are the names cipher_suites accepts.
func tls12Suites() []string {
	var names []string
	for _, s := range tls.CipherSuites() {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			names = append(names, s.Name)
		}
	}
	return names
}

// validateWSTLS checks the ws listeners and their key pair against the TLS
// policy. ws.listen is never TLS, so a certificate with no tls_listen is an
// error rather than a WSS listener silently lost.
func (c *Config) validateWSTLS() error {
	ws := c.WS
	if ws.Listen == "" && ws.TLSListen == "" && c.Edge.Listen == "" {
		return keyErr("ws.listen", "ws.listen, ws.tls_listen and edge.listen are all empty: set at least one")
	}
	if ws.Listen != "" {
		if err := checkHostPort("ws.listen", ws.Listen); err != nil {
			return err
		}
	}
	policy, err := c.TLS.ServerConfig()
	if err != nil {
		return err
	}
	// WSS is served on ws.tls_listen, on edge.listen, or both.
	wssOn := "ws.tls_listen"
	switch {
	case ws.TLSListen != "":
		if err := checkHostPort("ws.tls_listen", ws.TLSListen); err != nil {
			return err
		}
		if _, port, _ := net.SplitHostPort(ws.TLSListen); ws.TLSListen == ws.Listen && port != "0" {
			return keyErr("ws.tls_listen", "%q is also ws.listen: WS and WSS need their own ports", ws.TLSListen)
		}
	case c.Edge.Listen != "":
		wssOn = "edge.listen"
	default:
		if ws.TLSCert != "" || ws.TLSKey != "" {
			return keyErr("ws.tls_listen", "is empty but ws.tls_cert/ws.tls_key are set: ws.listen is plain WS only; set ws.tls_listen (e.g. 0.0.0.0:443) for WSS or remove the certificate")
		}
		return nil
	}
	if ws.TLSCert == "" {
		return keyErr("ws.tls_cert", "is required with %s (a PEM certificate chain)", wssOn)
	}
	if ws.TLSKey == "" {
		return keyErr("ws.tls_key", "is required with %s (a PEM private key)", wssOn)
	}
	for _, f := range []struct{ key, path string }{{"ws.tls_cert", ws.TLSCert}, {"ws.tls_key", ws.TLSKey}} {
		if _, err := os.Stat(f.path); err != nil {
			return keyErr(f.key, "%v", err)
		}
	}
	cert, err := tls.LoadX509KeyPair(ws.TLSCert, ws.TLSKey)
	if err != nil {
		return keyErr("ws.tls_cert", "with ws.tls_key: %v", err)
	}
	if !suitesFitKey(policy.CipherSuites, cert.PrivateKey) {
		return keyErr("tls.cipher_suites", "no suite listed fits the %T key of ws.tls_cert: TLS 1.2 clients could not connect", cert.PrivateKey)
	}
	return nil
}

// suitesFitKey reports whether a TLS 1.2 handshake can sign with key under
// one of suites (nil: Go's defaults, which cover every key type).
func suitesFitKey(suites []uint16, key crypto.PrivateKey) bool {
	if len(suites) == 0 {
		return true
	}
	var family string
	switch key.(type) {
	case *rsa.PrivateKey:
		family = "_RSA_"
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		family = "_ECDSA_"
	default:
		return true // unknown signer: let the handshake judge
	}
	for _, id := range suites {
		if strings.Contains(tls.CipherSuiteName(id), family) {
			return true
		}
	}
	return false
}

// validateSIPTLS checks SIP over TLS toward the core: a listener needs its
// key pair, and an upstream over TLS a listener (the core reaches the
// gateway's Contact over TLS too).
func (c *Config) validateSIPTLS(proxy Proxy) error {
	sip := c.SIP
	tp := proxy.Transport
	if tp == "" {
		tp = sip.Transport
	}
	if sip.TLSListen == "" {
		if sip.TLSCert != "" || sip.TLSKey != "" {
			return keyErr("sip.tls_cert", "is set but sip.tls_listen is empty")
		}
		if tp == "tls" {
			return keyErr("sip.tls_listen", "upstream.proxy is over TLS: the core needs a TLS listener to reach the gateway")
		}
		return nil
	}
	if err := checkHostPort("sip.tls_listen", sip.TLSListen); err != nil {
		return err
	}
	if sip.TLSCert == "" || sip.TLSKey == "" {
		return keyErr("sip.tls_cert", "sip.tls_listen needs sip.tls_cert and sip.tls_key")
	}
	if _, err := tls.LoadX509KeyPair(sip.TLSCert, sip.TLSKey); err != nil {
		return keyErr("sip.tls_cert", "%v", err)
	}
	if c.Upstream.TLSCA != "" {
		if _, err := os.Stat(c.Upstream.TLSCA); err != nil {
			return keyErr("upstream.tls_ca", "%v", err)
		}
	}
	return nil
}
