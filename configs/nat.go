package configs

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// STUN is the gateway's STUN server (RFC 8489), with RFC 5780 NAT
// behaviour discovery when the host has a second address to answer from.
type STUN struct {
	// Listen is the host:port served over UDP and TCP; empty turns it off.
	Listen string `yaml:"listen"`
	// AlternateIP is a second address of the host; with it, CHANGE-REQUEST,
	// OTHER-ADDRESS and RESPONSE-ORIGIN let clients classify their NAT
	// (RFC 5780). Listen must then name a concrete IP.
	AlternateIP string `yaml:"alternate_ip"`
	// AlternatePort is the second port of RFC 5780; 0 is Listen's port + 1.
	AlternatePort int `yaml:"alternate_port"`
}

// TURN is the embedded TURN server (RFC 8656): a browser whose network
// blocks direct media relays it through the gateway over UDP, TCP or TLS.
type TURN struct {
	// Listen is the host:port served over UDP and TCP; empty turns TURN off.
	Listen string `yaml:"listen"`
	// TLSListen is the host:port of TURN over TLS (ALPN stun.turn); its
	// certificate is TLSCert/TLSKey, or the WSS one (ws.tls_cert/tls_key).
	TLSListen string `yaml:"tls_listen"`
	TLSCert   string `yaml:"tls_cert"`
	TLSKey    string `yaml:"tls_key"`
	// Realm is the long-term credential realm; defaults to upstream.domain.
	Realm string `yaml:"realm"`
	// Users are long-term credentials (RFC 8489 §9.2).
	Users []TURNUser `yaml:"users"`
	// Secret (or SecretFile) is the TURN REST API shared secret: usernames
	// "expiry:subject" with an HMAC-SHA1 password, what coturn's
	// use-auth-secret and WebRTC applications speak. In token mode the
	// gateway hands such credentials to each browser.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// CredentialTTL is how long the credentials the gateway hands out last.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// RelayIP is the address relayed allocations bind to; defaults to
	// media.bind_ip, else media.public_ip.
	RelayIP string `yaml:"relay_ip"`
	// ExternalIP is the relayed address told to clients, for a server
	// behind 1:1 NAT; defaults to RelayIP.
	ExternalIP string `yaml:"external_ip"`
	// RelayPorts is the "min-max" range relayed allocations take ports from.
	RelayPorts string `yaml:"relay_ports"`
	// AllowedPeers are the networks (CIDR or single addresses) a client may
	// relay to although they are private, loopback or link-local: by
	// default TURN refuses them (403), or it would be an open proxy into
	// the operator's network.
	AllowedPeers []string `yaml:"allowed_peers"`
	// QuotaPerUser and QuotaTotal bound allocations at once per username
	// and in all (486 Allocation Quota Reached past them).
	QuotaPerUser int `yaml:"quota_per_user"`
	QuotaTotal   int `yaml:"quota_total"`
	// MaxLifetime caps the allocation lifetime a client may ask for.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// Edge is one TCP port (typically 443) shared by everything a browser
// allowed only HTTPS needs: WSS (TLS with ALPN http/1.1 or h2), TURN over
// TLS (ALPN stun.turn, RFC 7443, or a STUN message after a handshake
// without ALPN), TURN over TCP and ICE-TCP (a STUN message, plain or in
// an RFC 4571 frame, as the first bytes) and plain WebSocket.
type Edge struct {
	// Listen is the shared host:port; empty turns it off. Its TLS uses
	// ws.tls_cert/tls_key.
	Listen string `yaml:"listen"`
}

func (c *Config) validateEdge() error {
	if c.Edge.Listen == "" {
		return nil
	}
	if err := checkHostPort("edge.listen", c.Edge.Listen); err != nil {
		return err
	}
	if c.Media.WebRTCTCPPort != 0 {
		return keyErr("media.webrtc_tcp_port", "set it or edge.listen, not both: with edge.listen ICE-TCP is served on the shared port")
	}
	for _, other := range []struct{ key, v string }{{"ws.listen", c.WS.Listen}, {"ws.tls_listen", c.WS.TLSListen}, {"turn.listen", c.TURN.Listen}, {"turn.tls_listen", c.TURN.TLSListen}} {
		if other.v == c.Edge.Listen {
			return keyErr("edge.listen", "%q is also %s: the shared port serves it already", c.Edge.Listen, other.key)
		}
	}
	return nil
}

// TURNUser is one long-term credential.
type TURNUser struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// defaultTURN holds the defaults of the keys a file may leave out (TURN
// itself is off until a listen is set).
func defaultTURN() TURN {
	return TURN{
		CredentialTTL: 12 * time.Hour,
		RelayPorts:    "49152-65535",
		QuotaPerUser:  10,
		QuotaTotal:    10000,
		MaxLifetime:   time.Hour,
	}
}

// TURNSecret is the REST API secret, read from SecretFile when set.
func (t TURN) TURNSecret() (string, error) {
	return readSecret("turn.secret_file", t.Secret, t.SecretFile)
}

// TURNAllowedPeers parses turn.allowed_peers (validated).
func (t TURN) TURNAllowedPeers() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(t.AllowedPeers))
	for _, s := range t.AllowedPeers {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// STUNAlternatePort is stun.alternate_port or its default, listen's + 1.
func (s STUN) STUNAlternatePort() int {
	if s.AlternatePort != 0 {
		return s.AlternatePort
	}
	_, port, _ := net.SplitHostPort(s.Listen)
	p, _ := strconv.Atoi(port)
	return p + 1
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *Config) validateSTUN() error {
	s := c.STUN
	if s.Listen == "" {
		if s.AlternateIP != "" || s.AlternatePort != 0 {
			return keyErr("stun.alternate_ip", "needs stun.listen")
		}
		return nil
	}
	if err := checkHostPort("stun.listen", s.Listen); err != nil {
		return err
	}
	if s.AlternateIP == "" {
		return nil
	}
	alt := net.ParseIP(s.AlternateIP)
	if alt == nil {
		return keyErr("stun.alternate_ip", "%q is not an IP address", s.AlternateIP)
	}
	host, port, _ := net.SplitHostPort(s.Listen)
	primary := net.ParseIP(host)
	if primary == nil || primary.IsUnspecified() {
		return keyErr("stun.listen", "%q must name the host's primary IP when stun.alternate_ip is set (RFC 5780 answers name their addresses)", s.Listen)
	}
	if primary.Equal(alt) {
		return keyErr("stun.alternate_ip", "%s is stun.listen's own address", s.AlternateIP)
	}
	if (primary.To4() == nil) != (alt.To4() == nil) {
		return keyErr("stun.alternate_ip", "%s is not of stun.listen's address family", s.AlternateIP)
	}
	ap := s.STUNAlternatePort()
	if p, _ := strconv.Atoi(port); ap < 1 || ap > 65535 || ap == p {
		return keyErr("stun.alternate_port", "%d is not a port other than stun.listen's", ap)
	}
	return nil
}

func (c *Config) validateTURN() error {
	t := c.TURN
	if t.Listen == "" && t.TLSListen == "" {
		return nil
	}
	if t.Listen != "" {
		if err := checkHostPort("turn.listen", t.Listen); err != nil {
			return err
		}
	}
	if t.TLSListen != "" {
		if err := checkHostPort("turn.tls_listen", t.TLSListen); err != nil {
			return err
		}
		if (t.TLSCert == "") != (t.TLSKey == "") {
			return keyErr("turn.tls_cert", "set turn.tls_cert and turn.tls_key together")
		}
		if t.TLSCert == "" && c.WS.TLSCert == "" {
			return keyErr("turn.tls_listen", "needs turn.tls_cert/tls_key or ws.tls_cert/tls_key")
		}
	}
	if err := checkSecret("turn.secret", "turn.secret_file", t.Secret, t.SecretFile); err != nil {
		return err
	}
	secret, err := t.TURNSecret()
	if err != nil {
		return err
	}
	if len(t.Users) == 0 && secret == "" {
		return keyErr("turn.users", "TURN needs turn.users or turn.secret: a TURN server without credentials is an open relay")
	}
	for i, u := range t.Users {
		if u.Username == "" || u.Password == "" || strings.Contains(u.Username, ":") {
			return keyErr(fmt.Sprintf("turn.users[%d]", i), "needs a username without ':' (REST usernames have one) and a password")
		}
	}
	if c.TURNRealm() == "" {
		return keyErr("turn.realm", "is required when upstream.domain is not set")
	}
	if t.CredentialTTL <= 0 {
		return keyErr("turn.credential_ttl", "must be positive")
	}
	for _, k := range []struct{ key, v string }{{"turn.relay_ip", t.RelayIP}, {"turn.external_ip", t.ExternalIP}} {
		if k.v != "" && net.ParseIP(k.v) == nil {
			return keyErr(k.key, "%q is not an IP address", k.v)
		}
	}
	lo, hi, err := ParsePortRange(t.RelayPorts)
	if err != nil {
		return keyErr("turn.relay_ports", "%v", err)
	}
	if rlo, rhi, err := ParsePortRange(c.Media.RTPPorts); err == nil && lo <= rhi && rlo <= hi {
		return keyErr("turn.relay_ports", "%s overlaps media.rtp_ports (%s)", t.RelayPorts, c.Media.RTPPorts)
	}
	for i, p := range t.AllowedPeers {
		if _, err := parsePrefix(p); err != nil {
			return keyErr(fmt.Sprintf("turn.allowed_peers[%d]", i), "%q is not an address or CIDR network", p)
		}
	}
	if t.QuotaPerUser <= 0 || t.QuotaTotal <= 0 {
		return keyErr("turn.quota_per_user", "quota_per_user and quota_total must be positive")
	}
	if t.MaxLifetime < time.Minute || t.MaxLifetime > time.Hour {
		return keyErr("turn.max_lifetime", "%s is not between a minute and an hour (RFC 8656 §7.2's maximum)", t.MaxLifetime)
	}
	return nil
}

// TURNRealm is turn.realm, or upstream.domain when it is not set.
func (c *Config) TURNRealm() string {
	if c.TURN.Realm != "" {
		return c.TURN.Realm
	}
	return c.Upstream.Domain
}
