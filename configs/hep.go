package configs

import "net"

// HEP sends a copy of every SIP message of both legs, and each call's
// quality per leg, to a HEP v3 collector (Homer, sngrep -L): internal/hep.
type HEP struct {
	// Address is the collector's host:port (UDP); empty turns HEP off.
	Address string `yaml:"address"`
	// ID is the capture agent ID the collector files the packets under.
	ID uint32 `yaml:"id"`
	// Password is the collector's authentication key, if it asks for one.
	Password string `yaml:"password"`
}

func (c *Config) validateHEP() error {
	h := c.HEP
	if h.Address == "" {
		if h.ID != 0 || h.Password != "" {
			return keyErr("hep.address", "needed with hep.id or hep.password")
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(h.Address); err != nil || port == "" || port == "0" {
		return keyErr("hep.address", "%q is not host:port", h.Address)
	}
	return nil
}
