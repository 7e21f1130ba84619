package configs

import "fmt"

// validateFallback checks upstream.fallback and upstream.keepalive_interval.
// A fallback speaks the proxy's transport: the gateway's Contact names one.
func (c *Config) validateFallback(proxy Proxy) error {
	u := c.Upstream
	if u.KeepaliveInterval < 0 {
		return keyErr("upstream.keepalive_interval", "must not be negative")
	}
	if len(u.Fallback) > 0 && u.KeepaliveInterval == 0 {
		return keyErr("upstream.keepalive_interval", "upstream.fallback needs it: the keepalive tells when to fall back")
	}
	tp := proxy.Transport
	if tp == "" {
		tp = c.SIP.Transport
	}
	for i, f := range u.Fallback {
		key := fmt.Sprintf("upstream.fallback[%d]", i)
		p, err := ParseProxy(f)
		if err != nil {
			return keyErr(key, "%v", err)
		}
		ftp := p.Transport
		if ftp == "" {
			ftp = c.SIP.Transport
		}
		if ftp != tp {
			return keyErr(key, "transport %s differs from upstream.proxy's %s", ftp, tp)
		}
	}
	return nil
}
