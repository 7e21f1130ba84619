package natcheck

import (
	"context"
	"fmt"
	"net/netip"
)

// noOther is why the RFC 5780 tests cannot run against a plain server.
const noOther = "the server gave no OTHER-ADDRESS (no RFC 5780: run it with a second IP address)"

// mapping is RFC 5780 section 4.3: the mapped address of one socket seen
// by the primary address (Test I, a1), the alternate IP (Test II) and the
// alternate IP and port (Test III).
func (c *checker) mapping(ctx context.Context, m *prober, a1 answer) error {
	if !c.r.BehindNAT {
		// Every destination sees the local address itself.
		c.r.Mapping = EndpointIndependent
		return nil
	}
	if !a1.other.IsValid() {
		c.r.note("mapping", noOther)
		return nil
	}
	a2, err := c.ask(ctx, m, netip.AddrPortFrom(a1.other.Addr(), c.server.Port()))
	if err == nil && !a2.mapped.IsValid() {
		err = fmt.Errorf("%s: %w", a2.from, errNoMapped)
	}
	if err != nil {
		return c.fail("mapping", err)
	}
	if a2.mapped == a1.mapped {
		c.r.Mapping = EndpointIndependent
		return nil
	}
	a3, err := c.ask(ctx, m, a1.other)
	if err == nil && !a3.mapped.IsValid() {
		err = fmt.Errorf("%s: %w", a3.from, errNoMapped)
	}
	if err != nil {
		return c.fail("mapping", err)
	}
	if a3.mapped == a2.mapped {
		c.r.Mapping = AddressDependent
	} else {
		c.r.Mapping = AddressAndPortDependent
	}
	return nil
}
