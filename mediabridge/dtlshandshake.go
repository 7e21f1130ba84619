package mediabridge

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/imsgate/imsgate/internal/pionlog"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"
	"go.uber.org/zap"
)

// dtlsHandshakeTimeout bounds a handshake with its retransmissions; a
// browser that has not finished by then has given up too.
const dtlsHandshakeTimeout = 30 * time.Second

// dtlsRole is our side of the DTLS handshake, from a=setup (RFC 5763 §5).
type dtlsRole int

const (
	dtlsRoleUnknown dtlsRole = iota
	dtlsRoleServer           // we are a=setup:passive: the browser sends the ClientHello
	dtlsRoleClient           // we are a=setup:active
)

func (r dtlsRole) String() string {
	switch r {
	case dtlsRoleServer:
		return "server"
	case dtlsRoleClient:
		return "client"
	default:
		return "unknown"
	}
}

// runDTLS handshakes, installs the SRTP keys, and keeps the association
// (pion/dtls answers retransmitted flights and alerts) until close.
func (ep *webEndpoint) runDTLS(ctx context.Context, pc *dtlsPacketConn, role dtlsRole, fp remoteFingerprint) {
	defer ep.wg.Done()
	defer pc.Close()
	began := time.Now()
	conn, err := ep.handshake(ctx, pc, role, fp)
	handshake := time.Since(began)
	if err == nil {
		err = ep.installKeys(conn, role)
	}
	if ep.onSetup != nil && ctx.Err() == nil {
		transport, _ := ep.path()
		ep.onSetup(SetupReport{Transport: transport, Handshake: handshake, Setup: time.Since(ep.created), Err: err})
	}
	ep.handshookOnce.Do(func() { close(ep.handshook) })
	if conn != nil {
		defer conn.Close()
	}
	if err != nil {
		if ctx.Err() == nil {
			ep.log.Warn("webrtc failed", zap.String("reason", err.Error()), zap.Duration("dur", time.Since(ep.created)))
			ep.report(Event{Kind: EventFailed, Err: err})
		}
		return
	}
	transport, remote := ep.path()
	ep.log.Info("webrtc connected", zap.Duration("dur", time.Since(ep.created)),
		zap.Stringer("transport", transport), zap.Stringer("remote_addr", remote))
	ep.report(Event{Kind: EventConnected, Transport: transport})
	<-ctx.Done()
}

func (ep *webEndpoint) handshake(ctx context.Context, pc *dtlsPacketConn, role dtlsRole, fp remoteFingerprint) (*dtls.Conn, error) {
	if role == dtlsRoleClient {
		// A client needs the browser's address for its ClientHello.
		select {
		case <-ep.remoteSeen:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	verify := func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return errFingerprint
		}
		return fp.verify(rawCerts[0])
	}
	common := []dtls.Option{
		dtls.WithCertificates(ep.cert.cert),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // self-signed: the fingerprint is the check
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithLoggerFactory(pionlog.Factory(ep.log, nil)),
	}
	remote, _ := ep.remoteAddr()
	raddr := net.UDPAddrFromAddrPort(remote)
	var (
		conn *dtls.Conn
		err  error
	)
	if role == dtlsRoleClient {
		opts := make([]dtls.ClientOption, 0, len(common))
		for _, o := range common {
			opts = append(opts, o)
		}
		conn, err = dtls.ClientWithOptions(pc, raddr, opts...)
	} else {
		opts := make([]dtls.ServerOption, 0, len(common)+1)
		for _, o := range common {
			opts = append(opts, o)
		}
		opts = append(opts, dtls.WithClientAuth(dtls.RequireAnyClientCert),
			// The cookie round trip (RFC 6347 4.2.1) guards against spoofed
			// sources; DTLS reaches this endpoint only from an address that
			// passed an ICE check signed with our password, so it would only
			// cost the call a round trip.
			dtls.WithInsecureSkipVerifyHello(true))
		conn, err = dtls.ServerWithOptions(pc, raddr, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("dtls %s: %w", role, err)
	}
	hctx, cancel := context.WithTimeout(ctx, dtlsHandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("dtls %s handshake: %w", role, err)
	}
	return conn, nil
}

// installKeys derives the SRTP master keys (RFC 5764 §4.2) and hands the
// two contexts to their packet paths.
func (ep *webEndpoint) installKeys(conn *dtls.Conn, role dtlsRole) error {
	dp, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return errSRTPProfile
	}
	var profile srtp.ProtectionProfile
	switch dp {
	case dtls.SRTP_AEAD_AES_128_GCM:
		profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return fmt.Errorf("%w: %d", errSRTPProfile, dp)
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return fmt.Errorf("dtls state: %w", errSRTPProfile)
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, role == dtlsRoleClient); err != nil {
		return fmt.Errorf("extract srtp keys: %w", err)
	}
	in, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile,
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.SRTCPReplayProtection(srtpReplayWindow))
	if err != nil {
		return fmt.Errorf("inbound srtp context: %w", err)
	}
	out, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile)
	if err != nil {
		return fmt.Errorf("outbound srtp context: %w", err)
	}
	ep.useContexts(in, out)
	return nil
}
