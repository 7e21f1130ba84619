package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/certs"
	"github.com/imsgate/imsgate/internal/iceservers"
	"github.com/imsgate/imsgate/internal/stunserver"
	"github.com/imsgate/imsgate/internal/turnserver"
)

// software is the SOFTWARE attribute of the STUN and TURN answers.
const software = "imsgate"

// startNAT runs the STUN and TURN servers that cfg names.
func (a *app) startNAT(cfg configs.Config) error {
	if cfg.STUN.Listen != "" {
		alt := 0
		if cfg.STUN.AlternateIP != "" {
			alt = cfg.STUN.STUNAlternatePort()
		}
		s, err := stunserver.New(stunserver.Config{
			Listen: cfg.STUN.Listen, AlternateIP: cfg.STUN.AlternateIP, AlternatePort: alt, Software: software,
		}, a.log.Named("stun"))
		if err != nil {
			return fmt.Errorf("stun.listen: %w", err)
		}
		a.stun = s
		fields := []zap.Field{zap.Stringer("listen", s.Addrs().Primary), zap.Bool("rfc5780", cfg.STUN.AlternateIP != "")}
		if cfg.STUN.AlternateIP != "" {
			fields = append(fields, zap.Stringer("other_address", s.Addrs().AltBoth))
		}
		a.log.Info("stun server ready", fields...)
	}
	if cfg.TURN.Listen == "" && cfg.TURN.TLSListen == "" {
		return nil
	}
	tc, err := a.turnConfig(cfg)
	if err != nil {
		return err
	}
	t, err := turnserver.New(tc, a.log.Named("turn"))
	if err != nil {
		return fmt.Errorf("turn: %w", err)
	}
	a.turn = t
	ad := t.Addrs()
	listening := []zap.Field{}
	if ad.UDP.IsValid() {
		listening = append(listening, zap.Stringer("udp_tcp", ad.UDP))
	}
	if ad.TLS.IsValid() {
		listening = append(listening, zap.Stringer("tls", ad.TLS))
	}
	if a.edge != nil {
		listening = append(listening, zap.Stringer("edge", a.edge.Addr()))
	}
	a.log.Info("turn server ready", append(listening, zap.String("realm", tc.Realm),
		zap.String("relay_ip", tc.RelayIP), zap.String("external_ip", tc.ExternalIP), zap.Int("users", len(tc.Users)),
		zap.Bool("rest_secret", tc.Secret != ""), zap.Int("allowed_peer_networks", len(tc.AllowedPeers)))...)
	return nil
}

// turnConfig is the TURN server's section of cfg, with its certificate.
func (a *app) turnConfig(cfg configs.Config) (turnserver.Config, error) {
	t := cfg.TURN
	secret, err := t.TURNSecret()
	if err != nil {
		return turnserver.Config{}, err
	}
	lo, hi, _ := configs.ParsePortRange(t.RelayPorts) // validated
	relayIP := t.RelayIP
	if relayIP == "" {
		relayIP = cfg.Media.BindIP
	}
	if relayIP == "" {
		relayIP = cfg.Media.PublicIP
	}
	externalIP := t.ExternalIP
	if ip := net.ParseIP(relayIP); externalIP == "" && ip != nil && ip.IsUnspecified() {
		externalIP = cfg.Media.PublicIP // relays on every address: tell the public one
	}
	tc := turnserver.Config{
		Listen: t.Listen, TLSListen: t.TLSListen, Realm: cfg.TURNRealm(), Secret: secret,
		RelayIP: relayIP, ExternalIP: externalIP, RelayPortMin: lo, RelayPortMax: hi,
		AllowedPeers: t.TURNAllowedPeers(), QuotaPerUser: t.QuotaPerUser, QuotaTotal: t.QuotaTotal,
		MaxLifetime: t.MaxLifetime, Software: software, Users: map[string]string{},
	}
	for _, u := range t.Users {
		tc.Users[u.Username] = u.Password
	}
	if a.edge != nil {
		// The shared port: TURN over TCP, over TLS with ALPN stun.turn (the
		// server does the handshake), and over TLS the edge did.
		tc.Streams = []turnserver.StreamListener{
			{Listener: a.edge.TURN(), Transport: turnserver.TransportTCP},
			{Listener: a.edge.TURNTLS(), Transport: turnserver.TransportTLS, Handshake: true},
			{Listener: a.edge.TURNTerminated(), Transport: turnserver.TransportTLS},
		}
	}
	if t.TLSListen != "" || a.edge != nil {
		certFile, keyFile := t.TLSCert, t.TLSKey
		if certFile == "" {
			certFile, keyFile = cfg.WS.TLSCert, cfg.WS.TLSKey
		}
		st, err := certs.NewStore(certFile, keyFile)
		if err != nil {
			return turnserver.Config{}, fmt.Errorf("turn.tls_cert: %w", err)
		}
		if tc.TLS, err = certs.ServerConfig(cfg.TLS, st); err != nil {
			return turnserver.Config{}, err
		}
		a.turnCerts = st
	}
	return tc, nil
}

// iceServers serves /ice-servers: the STUN and TURN URLs browsers are
// given, and in token mode TURN credentials of the token's subject.
func (a *app) iceServers(cfg configs.Config, subject func(*http.Request) (string, time.Time, error)) http.Handler {
	ic := iceservers.Config{Subject: subject, TTL: cfg.TURN.CredentialTTL, Origins: cfg.WS.Origins}
	if a.stun != nil {
		ic.STUN = []string{"stun:" + advertised(cfg, a.stun.Addrs().Primary)}
	}
	if a.turn != nil {
		ad := a.turn.Addrs()
		if ad.UDP.IsValid() {
			hp := advertised(cfg, ad.UDP)
			ic.TURN = append(ic.TURN, "turn:"+hp+"?transport=udp", "turn:"+hp+"?transport=tcp")
		}
		if ad.TLS.IsValid() {
			ic.TURN = append(ic.TURN, "turns:"+advertised(cfg, ad.TLS)+"?transport=tcp")
		}
		if a.edge != nil {
			// TURN on the shared port, for browsers that may reach only it.
			hp := advertised(cfg, addrPortOf(a.edge.Addr()))
			ic.TURN = append(ic.TURN, "turns:"+hp+"?transport=tcp", "turn:"+hp+"?transport=tcp")
		}
		secret, _ := cfg.TURN.TURNSecret() // validated
		if secret != "" {
			ic.Credentials = func(subject string, now time.Time, ttl time.Duration) (string, string) {
				return turnserver.RESTCredentials(secret, subject, ttl, now)
			}
		}
	}
	return iceservers.Handler(ic, a.log.Named("ice-servers"))
}

// advertised is host:port of a listener as browsers reach it: its own
// address when it names one, else media.public_ip.
func advertised(cfg configs.Config, ap netip.AddrPort) string {
	host := cfg.Media.PublicIP
	if ip := ap.Addr().Unmap(); ip.IsValid() && !ip.IsUnspecified() {
		host = ip.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(ap.Port())))
}

// relayLookup tells the b2bua which browser addresses are relays of the
// gateway's own TURN server; nil without one.
func (a *app) relayLookup() b2bua.RelayLookup {
	if a.turn == nil {
		return nil
	}
	return func(addr netip.AddrPort) (string, bool) {
		tr, ok := a.turn.RelayTransport(addr)
		return tr.String(), ok
	}
}

// addrPortOf is a listener address as a netip.AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}
