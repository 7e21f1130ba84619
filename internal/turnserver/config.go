package turnserver

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Defaults of the Config fields left zero (the same as configs' turn section).
const (
	DefaultRelayPortMin = 49152 // RFC 8656 §7.2 recommends the dynamic range
	DefaultRelayPortMax = 65535
	DefaultQuotaPerUser = 10
	DefaultQuotaTotal   = 10000
	DefaultMaxLifetime  = time.Hour
)

// defaultLifetime is what an Allocate without LIFETIME gets (RFC 8656 §7.2).
const defaultLifetime = 10 * time.Minute

// alpnTURN is the ALPN protocol of TURN over TLS (RFC 7443).
const alpnTURN = "stun.turn"

// Config is the TURN server's section of the gateway's configuration.
type Config struct {
	// Listen is the host:port served over UDP and TCP; "" serves neither
	// (TLS only). Port 0 picks one port free for both.
	Listen string
	// TLSListen is the host:port of TURN over TLS; "" serves none.
	TLSListen string
	// TLS is the caller's (the certificate store's) configuration for
	// TLSListen; the server offers ALPN "stun.turn" (RFC 7443) on a copy.
	TLS *tls.Config
	// Realm is the long-term credential realm (RFC 8489 §9.2).
	Realm string
	// Users are long-term credentials, user → password.
	Users map[string]string
	// Secret is the TURN REST API shared secret: username "expiry:subject"
	// (unix seconds), password base64(HMAC-SHA1(secret, username)), as
	// coturn's use-auth-secret. "" accepts no REST credentials.
	Secret string
	// RelayIP is the address relays bind on.
	RelayIP string
	// ExternalIP is the address told to clients in XOR-RELAYED-ADDRESS, for
	// a server behind 1:1 NAT; "" is RelayIP.
	ExternalIP string
	// RelayPortMin and RelayPortMax bound relay ports (inclusive); both 0
	// is 49152-65535.
	RelayPortMin, RelayPortMax int
	// AllowedPeers are networks a relay may reach although the peer policy
	// refuses them (private, loopback, link-local, the server's own, ...).
	AllowedPeers []netip.Prefix
	// QuotaPerUser bounds allocations at once per user (for REST
	// credentials, per subject); QuotaTotal bounds them in all. 0 is the
	// default; past either the answer is 486 Allocation Quota Reached.
	QuotaPerUser int
	QuotaTotal   int
	// MaxLifetime caps allocation lifetimes; 0 is an hour, and pion caps
	// at an hour whatever it is. A client asking more gets MaxLifetime
	// (screen lowers the LIFETIME it asks for); one asking nothing
	// min(MaxLifetime, 10 minutes).
	MaxLifetime time.Duration
	// Software is the SOFTWARE attribute of the server's responses that
	// carry no MESSAGE-INTEGRITY; "" sends none.
	Software string
	// Streams are listeners another part of the gateway accepts for (the
	// shared port of internal/edge), served beside Listen and TLSListen.
	Streams []StreamListener
}

// StreamListener is a listener of TURN connections handed in.
type StreamListener struct {
	Listener net.Listener
	// Transport is what its connections count as (TCP or TLS).
	Transport Transport
	// Handshake: the server does the TLS (TLS is then required); false
	// for plain TCP, or TLS that whoever accepted already did.
	Handshake bool
}

// withDefaults fills the zero fields that have defaults.
func (c Config) withDefaults() Config {
	if c.RelayPortMin == 0 && c.RelayPortMax == 0 {
		c.RelayPortMin, c.RelayPortMax = DefaultRelayPortMin, DefaultRelayPortMax
	}
	if c.QuotaPerUser == 0 {
		c.QuotaPerUser = DefaultQuotaPerUser
	}
	if c.QuotaTotal == 0 {
		c.QuotaTotal = DefaultQuotaTotal
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.ExternalIP == "" {
		c.ExternalIP = c.RelayIP
	}
	return c
}

// validate names the first field that cannot work; c has its defaults.
func (c Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	if c.Listen == "" && c.TLSListen == "" && len(c.Streams) == 0 {
		return bad("Listen", "set Listen, TLSListen or Streams")
	}
	for _, st := range c.Streams {
		if st.Listener == nil || (st.Handshake && c.TLS == nil) {
			return bad("Streams", "a stream listener needs a listener, and TLS when the server does the handshake")
		}
	}
	for _, l := range []struct{ field, addr string }{{"Listen", c.Listen}, {"TLSListen", c.TLSListen}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return bad(l.field, "%v", err)
		}
	}
	if c.TLSListen != "" && c.TLS == nil {
		return bad("TLS", "TLSListen needs a tls.Config")
	}
	if c.Realm == "" {
		return bad("Realm", "empty")
	}
	if len(c.Users) == 0 && c.Secret == "" {
		return bad("Users", "set Users or Secret: a TURN server without credentials is an open relay")
	}
	for u, p := range c.Users {
		if u == "" || p == "" || strings.Contains(u, ":") {
			return bad("Users", "user %q: needs a name without ':' and a password", u)
		}
	}
	relay, err := netip.ParseAddr(c.RelayIP)
	if err != nil {
		return bad("RelayIP", "%q is not an IP address", c.RelayIP)
	}
	ext, err := netip.ParseAddr(c.ExternalIP)
	if err != nil {
		return bad("ExternalIP", "%q is not an IP address", c.ExternalIP)
	}
	if ext.IsUnspecified() {
		// XOR-RELAYED-ADDRESS must be an address a peer can send to.
		return bad("ExternalIP", "%s cannot be advertised; set ExternalIP when RelayIP is unspecified", ext)
	}
	if relay.Unmap().Is4() != ext.Unmap().Is4() {
		return bad("ExternalIP", "%s is not of RelayIP's address family", ext)
	}
	if c.RelayPortMin < 1 || c.RelayPortMax > 65535 || c.RelayPortMin > c.RelayPortMax {
		return bad("RelayPortMin", "%d-%d is not a port range", c.RelayPortMin, c.RelayPortMax)
	}
	if c.QuotaPerUser < 0 || c.QuotaTotal < 0 {
		return bad("QuotaPerUser", "quotas must not be negative")
	}
	if c.MaxLifetime < 0 {
		return bad("MaxLifetime", "must not be negative")
	}
	return nil
}

// lifetime is pion's AllocationLifetime: the lifetime of an Allocate or
// Refresh without LIFETIME, or asking for an hour or more.
func (c Config) lifetime() time.Duration {
	return min(c.MaxLifetime, defaultLifetime)
}

// ownAddrs are the addresses at which a relay would reach the server
// itself (policy.go, isLoop): the relay's, the advertised one, the
// listeners', and, when any of them is unspecified (all interfaces), every
// address of the host.
func (c Config) ownAddrs() []netip.Addr {
	var out []netip.Addr
	all := false
	add := func(s string) {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
		case a.IsUnspecified():
			all = true
		default:
			out = append(out, a.Unmap())
		}
	}
	add(c.RelayIP)
	add(c.ExternalIP)
	for _, l := range []string{c.Listen, c.TLSListen} {
		if host, _, err := net.SplitHostPort(l); err == nil {
			add(host)
		}
	}
	if all {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range addrs {
				if n, ok := ia.(*net.IPNet); ok {
					if a, ok := netip.AddrFromSlice(n.IP); ok {
						out = append(out, a.Unmap())
					}
				}
			}
		}
	}
	return out
}

// tlsConfig is the caller's TLS configuration offering only TURN's ALPN
// protocol: a certificate store shared with WSS offers http/1.1, which a
// TURN listener must not accept.
func (c Config) tlsConfig() *tls.Config {
	t := c.TLS.Clone()
	t.NextProtos = []string{alpnTURN}
	return t
}
