// Package configs holds imsgate's configuration schema, its defaults and its
// validation. It keeps no runtime state: constructors elsewhere take the
// section they need.
package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	Log      Log      `yaml:"log"`
	WS       WS       `yaml:"ws"`
	TLS      TLS      `yaml:"tls"`
	SIP      SIP      `yaml:"sip"`
	Upstream Upstream `yaml:"upstream"`
	Calls    Calls    `yaml:"calls"`
	Presence Presence `yaml:"presence"`
	Auth     Auth     `yaml:"auth"`
	Limits   Limits   `yaml:"limits"`
	DTMF     DTMF     `yaml:"dtmf"`
	Media    Media    `yaml:"media"`
	STUN     STUN     `yaml:"stun"`
	TURN     TURN     `yaml:"turn"`
	Edge     Edge     `yaml:"edge"`
	Demo     Demo     `yaml:"demo"`
	Admin    Admin    `yaml:"admin"`
	CDR      CDR      `yaml:"cdr"`
	HEP      HEP      `yaml:"hep"`
	Debug    Debug    `yaml:"debug"`
}

// Debug holds what an operator turns on to look inside a running gateway.
type Debug struct {
	// PprofListen, when set, serves Go's /debug/pprof on this host:port
	// (keep it on loopback: profiles show call data).
	PprofListen string `yaml:"pprof_listen"`
}

// Log selects the log level and format.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is "console" (human) or "json".
	Format string `yaml:"format"`
}

// WS is the SIP-over-WebSocket side (RFC 7118) that browsers connect to.
type WS struct {
	// Listen is the host:port for plain HTTP/WebSocket (ws://); empty
	// serves none. It is never TLS, whatever tls_cert says.
	Listen string `yaml:"listen"`
	// TLSListen is the host:port for HTTPS/WebSocket over TLS (wss://);
	// empty serves none. It needs tls_cert and tls_key.
	TLSListen string `yaml:"tls_listen"`
	// Path, when set, is the only HTTP path that accepts upgrades.
	Path string `yaml:"path"`
	// TLSCert and TLSKey are the PEM files of tls_listen, re-read on SIGHUP.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Origins is the Origin allowlist; empty allows every origin.
	Origins []string `yaml:"origins"`
	// MaxMessageBytes is the largest SIP message accepted in one frame.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// PingInterval is how often the gateway sends a WebSocket ping.
	PingInterval time.Duration `yaml:"ping_interval"`
	// IdleTimeout closes a connection that has sent nothing (not even a pong) for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WebPhone serves the demo web phone page on non-upgrade GET requests.
	WebPhone bool `yaml:"web_phone"`
	// WebPhoneLibDir is where the phone page's SIP library (JsSIP from npm) is read from.
	WebPhoneLibDir string `yaml:"web_phone_lib_dir"`
}

// SIP is the plain SIP side toward the core.
type SIP struct {
	// Listen is the host:port the gateway listens on, UDP and TCP.
	Listen string `yaml:"listen"`
	// Advertise is the host (or host:port) put in Contact and Via toward the
	// core; defaults to the listen address.
	Advertise string `yaml:"advertise"`
	// Transport is the transport used toward the upstream when upstream.proxy
	// names none: udp, tcp or tls.
	Transport string `yaml:"transport"`
	// TLSListen is the host:port of SIP over TLS toward the core; empty
	// serves none. It needs tls_cert and tls_key (PEM, re-read on SIGHUP).
	TLSListen string `yaml:"tls_listen"`
	TLSCert   string `yaml:"tls_cert"`
	TLSKey    string `yaml:"tls_key"`
}

// Upstream is the IMS core, PBX or proxy every request is re-originated to.
type Upstream struct {
	// Proxy is a SIP URI such as sip:pcscf.example.net:5060;transport=tcp.
	Proxy string `yaml:"proxy"`
	// Fallback are further proxies, in order, taken while those before
	// them do not answer the OPTIONS keepalive (or answer 503); the first
	// that answers again is taken back.
	Fallback []string `yaml:"fallback"`
	// KeepaliveInterval is how often each upstream is sent an OPTIONS; 0
	// sends none (and then every upstream counts as answering).
	KeepaliveInterval time.Duration `yaml:"keepalive_interval"`
	// DNSServer is the host:port RFC 3263 asks (without upstream.proxy,
	// the servers of upstream.domain are found in DNS); "" is the first
	// nameserver of /etc/resolv.conf.
	DNSServer string `yaml:"dns_server"`
	// Domain is the home domain used when a request names none.
	Domain string `yaml:"domain"`
	// RegisterExpires caps the registration expiry asked of the core.
	RegisterExpires time.Duration `yaml:"register_expires"`
	// InviteTimeout ends an unanswered outgoing INVITE (408 to the caller).
	InviteTimeout time.Duration `yaml:"invite_timeout"`
	// UnregisterRate paces the de-registrations sent when WebSockets close
	// (per second), so a mass disconnect does not flood the core.
	UnregisterRate float64 `yaml:"unregister_rate"`
	// TLSCA is the PEM file of the certificates the core's TLS certificate
	// is checked against (transport=tls); empty: the system's roots.
	TLSCA string `yaml:"tls_ca"`
	// IMS makes the gateway act as the core's P-CSCF-like edge (TS
	// 24.229): Path on REGISTER (RFC 3327), requests routed by the
	// Service-Route the core returned (RFC 3608).
	IMS bool `yaml:"ims"`
	// AccessNetworkInfo and VisitedNetworkID, when set, are sent as
	// P-Access-Network-Info (REGISTER and dialog-forming requests) and
	// P-Visited-Network-ID (REGISTER).
	AccessNetworkInfo string `yaml:"access_network_info"`
	VisitedNetworkID  string `yaml:"visited_network_id"`
	// WebHeaders are header names of the core's requests and responses
	// that reach browsers besides those the gateway relays anyway; every
	// other header of the core (its trust-domain P- headers above all)
	// stays on the core side.
	WebHeaders []string `yaml:"web_headers"`
}

// Calls is what applies to every call.
type Calls struct {
	// SessionExpires is the session interval (RFC 4028) the gateway asks of
	// the core on the calls it places, and the longest it accepts.
	SessionExpires time.Duration `yaml:"session_expires"`
	// MinSE is the shortest session interval the gateway accepts (422 with
	// Min-SE below it); RFC 4028 §4 puts the floor at 90 s.
	MinSE time.Duration `yaml:"min_se"`
	// ReconnectGrace keeps a call whose browser WebSocket dropped while the
	// browser reconnects and registers again; 0 ends such calls at once.
	ReconnectGrace time.Duration `yaml:"reconnect_grace"`
}

// DTMF says in which form digits reach each side.
type DTMF struct {
	// ToWeb is how the core's RFC 4733 digits reach the browser: "info"
	// (SIP INFO, application/dtmf-relay: what JsSIP and SIP.js report) or
	// "passthrough" (the RTP events as they came).
	ToWeb string `yaml:"to_web"`
	// ToCore is how the browser's digits (INFO or RFC 4733) reach the
	// core: "auto" (RFC 4733 when the core's SDP has telephone-event, else
	// INFO), "rfc4733", "info", "both" or "inband" (tones in G.711 audio).
	ToCore string `yaml:"to_core"`
	// DetectInband reads DTMF tones in the core's G.711 audio (Goertzel)
	// and reports them like RFC 4733 digits.
	DetectInband bool `yaml:"detect_inband"`
}

// Presence is the relay of what is not a call: MESSAGE, SUBSCRIBE/NOTIFY,
// PUBLISH.
type Presence struct {
	// MaxBodyBytes is the largest MESSAGE body relayed (413 above).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MessageRate and MessageBurst bound the MESSAGEs one browser
	// connection may send (429 with Retry-After past them).
	MessageRate  float64 `yaml:"message_rate"`
	MessageBurst int     `yaml:"message_burst"`
	// MaxSubscriptions bounds the subscriptions (SUBSCRIBE dialogs) one
	// browser connection may hold (429 with Retry-After past it).
	MaxSubscriptions int `yaml:"max_subscriptions"`
}

// Media is the media bridge: WebRTC toward browsers, RTP toward the core.
type Media struct {
	// PublicIP is the address put in SDP and ICE candidates for both sides.
	PublicIP string `yaml:"public_ip"`
	// BindIP is the address media sockets bind to; defaults to public_ip.
	BindIP string `yaml:"bind_ip"`
	// WebRTCPort is the one UDP port carrying all browser media (ICE mux).
	WebRTCPort int `yaml:"webrtc_port"`
	// WebRTCTCPPort, when set, also offers browsers a passive ICE-TCP
	// candidate on this TCP port (RFC 6544, RFC 4571 framing), for networks
	// that drop UDP; 0 turns it off.
	WebRTCTCPPort int `yaml:"webrtc_tcp_port"`
	// RTPPorts is the "min-max" range RTP/RTCP port pairs toward the core come from.
	RTPPorts string `yaml:"rtp_ports"`
	// Codecs lists the audio codecs offered, in preference order.
	Codecs []string `yaml:"codecs"`
}

// Demo runs an in-process core (registrar without auth and an echo target)
// so the gateway can be tried with no external server.
type Demo struct {
	// Enabled turns the demo core on; upstream.proxy then points at it.
	Enabled bool `yaml:"enabled"`
	// Listen is where the demo core listens for SIP (UDP and TCP).
	Listen string `yaml:"listen"`
}

// Default returns the configuration used when a file leaves a key out.
func Default() Config {
	return Config{
		Log: Log{Level: "info", Format: "console"},
		TLS: TLS{MinVersion: "1.2"},
		WS: WS{
			Listen:          "127.0.0.1:8080",
			MaxMessageBytes: 64 * 1024,
			PingInterval:    30 * time.Second,
			IdleTimeout:     90 * time.Second,
			WebPhoneLibDir:  "cmd/imsgate/webphone/node_modules/jssip/dist",
		},
		SIP: SIP{Listen: "127.0.0.1:5070", Transport: "udp"},
		Upstream: Upstream{
			KeepaliveInterval: 30 * time.Second,
			RegisterExpires:   600 * time.Second,
			InviteTimeout:     180 * time.Second,
			UnregisterRate:    50,
		},
		Presence: Presence{MaxBodyBytes: 64 << 10, MessageRate: 5, MessageBurst: 20, MaxSubscriptions: 32},
		DTMF:     DTMF{ToWeb: "info", ToCore: "auto"},
		Calls: Calls{
			SessionExpires: 1800 * time.Second,
			MinSE:          90 * time.Second,
			ReconnectGrace: 30 * time.Second,
		},
		Media: Media{
			PublicIP:   "127.0.0.1",
			WebRTCPort: 10000,
			RTPPorts:   "20000-29999",
			Codecs:     []string{"opus", "PCMU", "PCMA", "G722", "telephone-event"},
		},
		TURN:   defaultTURN(),
		Demo:   Demo{Listen: "127.0.0.1:5090"},
		Admin:  Admin{Listen: DefaultAdminListen, TimelineCalls: DefaultTimelineCalls, StatusLibDir: DefaultStatusLibDir},
		CDR:    CDR{RotateBytes: DefaultCDRRotateBytes},
		Auth:   Auth{Mode: AuthPassthrough, Leeway: 30 * time.Second, ExpiryGrace: 5 * time.Minute},
		Limits: DefaultLimits(),
	}
}

// DefaultYAML is the embedded configuration used when imsgate starts without
// -config: demo core on, web phone on, everything on loopback.
const DefaultYAML = `# imsgate embedded default: try it locally with no external server.
log:
  level: info
ws:
  listen: 127.0.0.1:8080
  web_phone: true
sip:
  listen: 127.0.0.1:5070
upstream:
  proxy: sip:127.0.0.1:5090;transport=udp
  domain: imsgate.test
media:
  public_ip: 127.0.0.1
  webrtc_port: 10000
  rtp_ports: "20000-20999"
demo:
  enabled: true
  listen: 127.0.0.1:5090
`

// Load reads, parses and validates a YAML file over the defaults.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML over the defaults and validates the result. Unknown
// keys are an error so a typo never silently falls back to a default.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// io.EOF is an empty file: all defaults.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// KeyError names the config key that is wrong.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string { return fmt.Sprintf("config key %s: %s", e.Key, e.Reason) }

func keyErr(key, format string, args ...any) error {
	return &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks every key and returns the first problem, naming its key.
func (c *Config) Validate() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return keyErr("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		return keyErr("log.format", "%q is not console or json", c.Log.Format)
	}
	if err := c.validateEdge(); err != nil {
		return err
	}
	if err := c.validateWSTLS(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if c.WS.Path != "" && !strings.HasPrefix(c.WS.Path, "/") {
		return keyErr("ws.path", "%q must start with /", c.WS.Path)
	}
	for i, o := range c.WS.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return keyErr(fmt.Sprintf("ws.origins[%d]", i), "%q is not an origin such as https://example.com", o)
		}
	}
	if c.WS.MaxMessageBytes < 1024 || c.WS.MaxMessageBytes > 1<<20 {
		return keyErr("ws.max_message_bytes", "%d is outside 1024..1048576", c.WS.MaxMessageBytes)
	}
	if c.WS.PingInterval <= 0 {
		return keyErr("ws.ping_interval", "must be positive")
	}
	if c.WS.IdleTimeout <= c.WS.PingInterval {
		return keyErr("ws.idle_timeout", "must be longer than ws.ping_interval (%s)", c.WS.PingInterval)
	}
	if err := checkHostPort("sip.listen", c.SIP.Listen); err != nil {
		return err
	}
	switch c.SIP.Transport {
	case "udp", "tcp", "tls":
	default:
		return keyErr("sip.transport", "%q is not udp, tcp or tls", c.SIP.Transport)
	}
	var proxy Proxy
	switch {
	case c.Upstream.Proxy != "":
		p, err := ParseProxy(c.Upstream.Proxy)
		if err != nil {
			return keyErr("upstream.proxy", "%v", err)
		}
		proxy = p
	case c.Upstream.Domain == "":
		return keyErr("upstream.proxy", "is required (a SIP URI such as sip:pcscf.example.net:5060;transport=tcp), or upstream.domain to find the servers by RFC 3263")
	}
	if c.Upstream.DNSServer != "" {
		if err := checkHostPort("upstream.dns_server", c.Upstream.DNSServer); err != nil {
			return err
		}
	}
	if err := c.validateSIPTLS(proxy); err != nil {
		return err
	}
	if err := c.validateFallback(proxy); err != nil {
		return err
	}
	if c.Upstream.RegisterExpires < 0 {
		return keyErr("upstream.register_expires", "must not be negative")
	}
	if c.Upstream.InviteTimeout <= 0 {
		return keyErr("upstream.invite_timeout", "must be positive")
	}
	if c.Upstream.UnregisterRate <= 0 {
		return keyErr("upstream.unregister_rate", "must be positive (de-registrations per second)")
	}
	if c.Calls.MinSE < 90*time.Second {
		return keyErr("calls.min_se", "%s is below the 90s floor of RFC 4028", c.Calls.MinSE)
	}
	if c.Calls.SessionExpires < c.Calls.MinSE {
		return keyErr("calls.session_expires", "%s is below calls.min_se (%s)", c.Calls.SessionExpires, c.Calls.MinSE)
	}
	if c.Presence.MaxBodyBytes <= 0 {
		return keyErr("presence.max_body_bytes", "must be positive")
	}
	if c.Presence.MessageRate <= 0 || c.Presence.MessageBurst <= 0 {
		return keyErr("presence.message_rate", "message_rate and message_burst must be positive")
	}
	if c.DTMF.ToWeb != "info" && c.DTMF.ToWeb != "passthrough" {
		return keyErr("dtmf.to_web", "%q is not info or passthrough", c.DTMF.ToWeb)
	}
	switch c.DTMF.ToCore {
	case "auto", "rfc4733", "info", "both", "inband":
	default:
		return keyErr("dtmf.to_core", "%q is not auto, rfc4733, info, both or inband", c.DTMF.ToCore)
	}
	if c.Presence.MaxSubscriptions <= 0 {
		return keyErr("presence.max_subscriptions", "must be positive")
	}
	if c.Calls.ReconnectGrace < 0 {
		return keyErr("calls.reconnect_grace", "must not be negative")
	}
	if net.ParseIP(c.Media.PublicIP) == nil {
		return keyErr("media.public_ip", "%q is not an IP address", c.Media.PublicIP)
	}
	if c.Media.BindIP != "" && net.ParseIP(c.Media.BindIP) == nil {
		return keyErr("media.bind_ip", "%q is not an IP address", c.Media.BindIP)
	}
	if c.Media.WebRTCPort < 0 || c.Media.WebRTCPort > 65535 {
		return keyErr("media.webrtc_port", "%d is not a port", c.Media.WebRTCPort)
	}
	if c.Media.WebRTCTCPPort < 0 || c.Media.WebRTCTCPPort > 65535 {
		return keyErr("media.webrtc_tcp_port", "%d is not a port", c.Media.WebRTCTCPPort)
	}
	lo, hi, err := ParsePortRange(c.Media.RTPPorts)
	if err != nil {
		return keyErr("media.rtp_ports", "%v", err)
	}
	if c.Media.WebRTCPort >= lo && c.Media.WebRTCPort <= hi {
		return keyErr("media.webrtc_port", "%d is inside media.rtp_ports", c.Media.WebRTCPort)
	}
	if len(c.Media.Codecs) == 0 {
		return keyErr("media.codecs", "must name at least one codec")
	}
	for i, name := range c.Media.Codecs {
		if !knownCodec(name) {
			return keyErr(fmt.Sprintf("media.codecs[%d]", i), "%q is not one of %s", name, strings.Join(KnownCodecs, ", "))
		}
	}
	if err := c.validateSTUN(); err != nil {
		return err
	}
	if err := c.validateTURN(); err != nil {
		return err
	}

	if c.Demo.Enabled {
		if err := checkHostPort("demo.listen", c.Demo.Listen); err != nil {
			return err
		}
	}
	if c.Debug.PprofListen != "" {
		if err := checkHostPort("debug.pprof_listen", c.Debug.PprofListen); err != nil {
			return err
		}
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if err := c.validateHEP(); err != nil {
		return err
	}
	if err := c.validateCDR(); err != nil {
		return err
	}
	return c.validateLimits()
}

// KnownCodecs are the codec names media.codecs accepts.
var KnownCodecs = []string{"opus", "PCMU", "PCMA", "G722", "telephone-event"}

func knownCodec(name string) bool {
	for _, k := range KnownCodecs {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func checkHostPort(key, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return keyErr(key, "%q is not host:port", v)
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		return keyErr(key, "%q has a bad host", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return keyErr(key, "%q has a bad port", v)
	}
	return nil
}

// ParsePortRange parses "min-max" with an even min so RTP/RTCP pairs align.
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not min-max", s)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q is not min-max", s)
	}
	if lo < 1024 || hi > 65535 || hi-lo < 3 {
		return 0, 0, fmt.Errorf("%q must lie within 1024-65535 and hold at least two port pairs", s)
	}
	return lo, hi, nil
}

// Proxy is a parsed upstream.proxy.
type Proxy struct {
	Host      string
	Port      int
	Transport string // "udp", "tcp" or "tls"
}

// Addr is host:port.
func (p Proxy) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// ParseProxy parses a SIP URI of the form sip:host[:port][;transport=udp|tcp].
func ParseProxy(s string) (Proxy, error) {
	rest, ok := strings.CutPrefix(s, "sip:")
	if !ok {
		return Proxy{}, fmt.Errorf("%q is not a sip: URI", s)
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	hostport, params, _ := strings.Cut(rest, ";")
	p := Proxy{Port: 5060, Transport: ""}
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return Proxy{}, fmt.Errorf("%q has a bad port", s)
		}
		p.Host, p.Port = h, n
	} else {
		p.Host = strings.Trim(hostport, "[]")
	}
	if p.Host == "" {
		return Proxy{}, fmt.Errorf("%q has no host", s)
	}
	for _, kv := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, "transport") {
			v = strings.ToLower(v)
			if v != "udp" && v != "tcp" && v != "tls" {
				return Proxy{}, fmt.Errorf("%q: transport %q is not udp, tcp or tls", s, v)
			}
			p.Transport = v
		}
	}
	return p, nil
}
