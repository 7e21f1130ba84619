package configs

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// Limits bound what one source, connection or identity may take of the
// gateway. Every one is on by default; a refusal is logged once per source
// and window, and counted.
type Limits struct {
	// ConnsPerIP bounds the TCP connections open from one source IP,
	// upgraded to WebSocket or not yet (an office behind one NAT shares it);
	// one past it is closed as it is accepted.
	ConnsPerIP int `yaml:"conns_per_ip"`
	// UpgradesPerIP is the WebSocket upgrades one source IP may make per
	// second (burst: twice as many); past it, 429.
	UpgradesPerIP float64 `yaml:"upgrades_per_ip"`
	// UpgradeTimeout is the time a client has to send its whole upgrade
	// request (slowloris), and how long a served HTTP connection may stay
	// idle before it is closed.
	UpgradeTimeout time.Duration `yaml:"upgrade_timeout"`
	// MaxUpgradeBytes bounds the upgrade request's headers (past it, 431).
	MaxUpgradeBytes int `yaml:"max_upgrade_bytes"`
	// RequestsPerConn is the SIP requests one connection may send per
	// second (burst: twice as many); past it, 503 with Retry-After, and a
	// connection that keeps on is closed.
	RequestsPerConn float64 `yaml:"requests_per_conn"`
	// RegistrationsPerConn bounds the bindings one connection may hold.
	RegistrationsPerConn int `yaml:"registrations_per_conn"`
	// CallsPerIdentity and CallsTotal bound concurrent calls per identity
	// (AoR or token subject) and in the whole gateway.
	CallsPerIdentity int `yaml:"calls_per_identity"`
	CallsTotal       int `yaml:"calls_total"`
	// MaxHeaders bounds the header fields of one SIP message, a
	// comma-separated row counting once per value (past it, 400), and
	// MaxSDPBytes its SDP or multipart body (past it, 413).
	MaxHeaders  int `yaml:"max_headers"`
	MaxSDPBytes int `yaml:"max_sdp_bytes"`
	// DenyDestinations are patterns of destinations no browser may call
	// in any mode (premium-rate numbers): shell patterns on the Request-URI
	// user, or on user@host, such as "+1900*" or "0900*".
	DenyDestinations []string `yaml:"deny_destinations"`
	// LogWindow is how often one source's refusals of one kind are logged.
	LogWindow time.Duration `yaml:"log_window"`
}

// DefaultLimits are the documented defaults (README, "Abuse limits").
func DefaultLimits() Limits {
	return Limits{
		ConnsPerIP:           500,
		UpgradesPerIP:        20,
		UpgradeTimeout:       5 * time.Second,
		MaxUpgradeBytes:      8 << 10,
		RequestsPerConn:      20,
		RegistrationsPerConn: 10,
		CallsPerIdentity:     8,
		CallsTotal:           10000,
		MaxHeaders:           100,
		MaxSDPBytes:          16 << 10,
		LogWindow:            time.Minute,
	}
}

func (c *Config) validateLimits() error {
	l := c.Limits
	if err := l.CheckPositive(); err != nil {
		return err
	}
	if l.MaxUpgradeBytes < 1024 {
		return keyErr("limits.max_upgrade_bytes", "%d is below 1024: browsers send about 600 bytes of headers", l.MaxUpgradeBytes)
	}
	if l.MaxSDPBytes > c.WS.MaxMessageBytes {
		return keyErr("limits.max_sdp_bytes", "%d is above ws.max_message_bytes (%d)", l.MaxSDPBytes, c.WS.MaxMessageBytes)
	}
	for i, p := range l.DenyDestinations {
		if err := checkPattern(p); err != nil {
			return keyErr(fmt.Sprintf("limits.deny_destinations[%d]", i), "%v", err)
		}
	}
	return nil
}

// CheckPositive returns a *KeyError naming the first limit that is zero or
// less, which would refuse everything rather than nothing.
func (l Limits) CheckPositive() error {
	for _, v := range []struct {
		key string
		n   float64
	}{
		{"limits.conns_per_ip", float64(l.ConnsPerIP)},
		{"limits.upgrades_per_ip", l.UpgradesPerIP},
		{"limits.upgrade_timeout", float64(l.UpgradeTimeout)},
		{"limits.max_upgrade_bytes", float64(l.MaxUpgradeBytes)},
		{"limits.requests_per_conn", l.RequestsPerConn},
		{"limits.registrations_per_conn", float64(l.RegistrationsPerConn)},
		{"limits.calls_per_identity", float64(l.CallsPerIdentity)},
		{"limits.calls_total", float64(l.CallsTotal)},
		{"limits.max_headers", float64(l.MaxHeaders)},
		{"limits.max_sdp_bytes", float64(l.MaxSDPBytes)},
		{"limits.log_window", float64(l.LogWindow)},
	} {
		if v.n <= 0 {
			return keyErr(v.key, "must be positive (limits cannot be turned off, only raised)")
		}
	}
	return nil
}

// checkPattern accepts a shell pattern path.Match can use.
func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a shell pattern: %w", p, err)
	}
	return nil
}
