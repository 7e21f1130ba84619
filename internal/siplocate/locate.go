// Package siplocate finds the SIP servers of a domain by RFC 3263: NAPTR
// records name the transports and their SRV names; SRV records, ordered by
// priority and, within one, picked by weight (RFC 2782), name the hosts
// and ports; A and AAAA records their addresses. Without NAPTR it asks
// the SRV name of the transport wanted; without SRV, the domain's own
// addresses on the transport's default port.
package siplocate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Target is one server to try, in the order Locate returns them.
type Target struct {
	// Name is the host the records named (the SRV target or the domain).
	Name      string
	Addr      netip.AddrPort
	Transport string // udp, tcp or tls
}

// URI is the target as a SIP URI naming its address.
func (t Target) URI() string {
	return fmt.Sprintf("sip:%s;transport=%s", t.Addr, t.Transport)
}

// Resolver asks one DNS server.
type Resolver struct {
	// Server is the DNS server's host:port.
	Server string
	// Timeout bounds each query; 0 is 2 s.
	Timeout time.Duration
}

// ErrNotFound is a domain with no SIP server for the transport.
var ErrNotFound = errors.New("no SIP server found")

// services are the NAPTR services of each transport (RFC 3263 §4.1).
var services = map[string]string{"udp": "SIP+D2U", "tcp": "SIP+D2T", "tls": "SIPS+D2T"}

// srvPrefixes are the SRV names of each transport without NAPTR (§4.1).
var srvPrefixes = map[string]string{"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}

// Locate returns domain's servers for transport in the order to try
// them, and how long the answer may be kept (the smallest TTL seen, at
// least 30 s).
func (r *Resolver) Locate(ctx context.Context, domain, transport string) ([]Target, time.Duration, error) {
	service, ok := services[transport]
	if !ok {
		return nil, 0, fmt.Errorf("siplocate: transport %q", transport)
	}
	domain = dns.Fqdn(domain)
	ttl := uint32(3600)
	keep := func(t uint32) { ttl = min(ttl, t) }

	// NAPTR: the SRV names of our transport, by order then preference.
	srvNames := []string{}
	naptrs, err := r.query(ctx, domain, dns.TypeNAPTR)
	if err != nil {
		return nil, 0, err
	}
	var ours []*dns.NAPTR
	for _, rr := range naptrs {
		if n, ok := rr.(*dns.NAPTR); ok && strings.EqualFold(n.Service, service) && strings.EqualFold(n.Flags, "s") {
			ours = append(ours, n)
			keep(n.Hdr.Ttl)
		}
	}
	slices.SortStableFunc(ours, func(a, b *dns.NAPTR) int {
		if a.Order != b.Order {
			return int(a.Order) - int(b.Order)
		}
		return int(a.Preference) - int(b.Preference)
	})
	for _, n := range ours {
		srvNames = append(srvNames, n.Replacement)
	}
	if len(ours) == 0 {
		srvNames = []string{srvPrefixes[transport] + domain}
	}

	var targets []Target
	var lastErr error
	for _, name := range srvNames {
		rrs, err := r.query(ctx, name, dns.TypeSRV)
		if err != nil {
			return nil, 0, err
		}
		var srvs []*dns.SRV
		for _, rr := range rrs {
			if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
				srvs = append(srvs, s)
				keep(s.Hdr.Ttl)
			}
		}
		for _, s := range orderSRV(srvs) {
			addrs, t, err := r.addresses(ctx, s.Target)
			if err != nil {
				lastErr = err // the other targets may still do
				continue
			}
			keep(t)
			for _, a := range addrs {
				targets = append(targets, Target{Name: strings.TrimSuffix(s.Target, "."), Addr: netip.AddrPortFrom(a, s.Port), Transport: transport})
			}
		}
	}
	if len(targets) == 0 && len(ours) == 0 {
		// No NAPTR, no SRV: the domain itself (§4.2).
		addrs, t, err := r.addresses(ctx, domain)
		if err != nil {
			return nil, 0, err
		}
		keep(t)
		port := uint16(5060)
		if transport == "tls" {
			port = 5061
		}
		for _, a := range addrs {
			targets = append(targets, Target{Name: strings.TrimSuffix(domain, "."), Addr: netip.AddrPortFrom(a, port), Transport: transport})
		}
	}
	if len(targets) == 0 {
		if lastErr != nil {
			return nil, 0, fmt.Errorf("%w: %s over %s: %w", ErrNotFound, strings.TrimSuffix(domain, "."), transport, lastErr)
		}
		return nil, 0, fmt.Errorf("%w: %s over %s", ErrNotFound, strings.TrimSuffix(domain, "."), transport)
	}
	return targets, max(time.Duration(ttl)*time.Second, 30*time.Second), nil
}

// orderSRV orders SRV records by priority, and within one priority by
// RFC 2782's weighted draw: the zero weights first, a number drawn from
// 0 to the sum of the weights left, and the first record whose running sum
// reaches it goes next.
func orderSRV(srvs []*dns.SRV) []*dns.SRV {
	slices.SortStableFunc(srvs, func(a, b *dns.SRV) int {
		if a.Priority != b.Priority {
			return int(a.Priority) - int(b.Priority)
		}
		return min(int(a.Weight), 1) - min(int(b.Weight), 1) // zero weights first
	})
	out := make([]*dns.SRV, 0, len(srvs))
	for i := 0; i < len(srvs); {
		j := i
		for j < len(srvs) && srvs[j].Priority == srvs[i].Priority {
			j++
		}
		group := slices.Clone(srvs[i:j])
		for len(group) > 0 {
			total := 0
			for _, s := range group {
				total += int(s.Weight)
			}
			n := rand.IntN(total + 1) //nolint:gosec // load spreading, not a secret
			pick, sum := len(group)-1, 0
			for k, s := range group {
				if sum += int(s.Weight); sum >= n {
					pick = k
					break
				}
			}
			out = append(out, group[pick])
			group = slices.Delete(group, pick, pick+1)
		}
		i = j
	}
	return out
}

// addresses are name's A and AAAA records (an address literal is itself).
func (r *Resolver) addresses(ctx context.Context, name string) ([]netip.Addr, uint32, error) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(name, ".")); err == nil {
		return []netip.Addr{a}, 3600, nil
	}
	ttl := uint32(3600)
	var out []netip.Addr
	var failed error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, dns.Fqdn(name), qt)
		if err != nil {
			// A server that knows only one family may refuse the other
			// (dnsmasq answers REFUSED to AAAA for an A-only name).
			failed = err
			continue
		}
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
					out = append(out, a)
					ttl = min(ttl, v.Hdr.Ttl)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					out = append(out, a)
					ttl = min(ttl, v.Hdr.Ttl)
				}
			}
		}
	}
	if len(out) == 0 && failed != nil {
		return nil, 0, failed
	}
	return out, ttl, nil
}

// query asks for name's records of type qt; a name that does not exist
// has none.
func (r *Resolver) query(ctx context.Context, name string, qt uint16) ([]dns.RR, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	m.RecursionDesired = true
	c := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.Server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("dns %s %s: %w", dns.TypeToString[qt], name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return in.Answer, nil
	}
	return nil, fmt.Errorf("dns %s %s: %s", dns.TypeToString[qt], name, dns.RcodeToString[in.Rcode])
}

// SystemServer is the first nameserver of /etc/resolv.conf, as host:port.
func SystemServer() (string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", err
	}
	if len(cc.Servers) == 0 {
		return "", errors.New("no nameserver in /etc/resolv.conf")
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}
