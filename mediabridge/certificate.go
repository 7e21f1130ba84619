package mediabridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
)

// dtlsCertificate is the engine's DTLS identity: one ECDSA P-256
// self-signed certificate per process, its SHA-256 fingerprint in every SDP
// (RFC 8122 §5).
type dtlsCertificate struct {
	cert        tls.Certificate
	fingerprint string // "AB:CD:..." as in a=fingerprint:sha-256
}

func newDTLSCertificate() (*dtlsCertificate, error) {
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		return nil, fmt.Errorf("generate dtls certificate: %w", err)
	}
	return &dtlsCertificate{cert: cert, fingerprint: sha256Fingerprint(cert.Certificate[0])}, nil
}

func sha256Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return strings.ToUpper(hexWithColons(sum[:]))
}

func hexWithColons(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// remoteFingerprint is the browser's a=fingerprint (RFC 8122 §5): the
// certificate it presents in DTLS must hash to it.
type remoteFingerprint struct {
	hash  string // lower case, e.g. "sha-256"
	value string // upper case hex with colons
}

// verify checks a peer certificate (DER) against the fingerprint.
func (f remoteFingerprint) verify(der []byte) error {
	if f.hash != "sha-256" {
		return fmt.Errorf("%w: hash %s", errFingerprint, f.hash)
	}
	got := sha256Fingerprint(der)
	if subtle.ConstantTimeCompare([]byte(got), []byte(f.value)) != 1 {
		return errFingerprint
	}
	return nil
}

// parseFingerprint reads "sha-256 AB:CD:..." from an a=fingerprint value.
func parseFingerprint(value string) (remoteFingerprint, bool) {
	hash, fp, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok {
		return remoteFingerprint{}, false
	}
	return remoteFingerprint{hash: strings.ToLower(hash), value: strings.ToUpper(strings.TrimSpace(fp))}, true
}
