package natcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/imsgate/imsgate/internal/stunserver"
)

// filtering is RFC 5780 section 4.4, on a socket of its own that has
// talked only to the primary address (section 4.5): after Test I, Test II
// asks for the answer from the other IP and port, Test III from the other
// port only. What comes through tells what the NAT lets in.
func (c *checker) filtering(ctx context.Context) error {
	other := c.r.OtherAddress
	if !other.IsValid() {
		c.r.note("filtering", noOther)
		return nil
	}
	f, err := c.fresh()
	if err != nil {
		return err
	}
	defer f.close()
	if _, err := c.ask(ctx, f, c.server); err != nil {
		return c.fail("filtering", err)
	}

	a2, err := c.ask(ctx, f, c.server, stunserver.ChangeRequest{IP: true, Port: true})
	switch {
	case err == nil:
		if err := checkSource(a2, other); err != nil {
			return c.fail("filtering", err)
		}
		c.r.Filtering = EndpointIndependent
		return nil
	case !errors.Is(err, errNoAnswer):
		return c.fail("filtering", err)
	}

	a3, err := c.ask(ctx, f, c.server, stunserver.ChangeRequest{Port: true})
	switch {
	case err == nil:
		if err := checkSource(a3, netip.AddrPortFrom(c.server.Addr(), other.Port())); err != nil {
			return c.fail("filtering", err)
		}
		c.r.Filtering = AddressDependent
	case errors.Is(err, errNoAnswer):
		c.r.Filtering = AddressAndPortDependent
	default:
		return c.fail("filtering", err)
	}
	return nil
}

// checkSource makes sure a CHANGE-REQUEST answer came from where it was
// asked to: a server that ignores CHANGE-REQUEST and answers from the
// primary address would make every NAT look open.
func checkSource(a answer, want netip.AddrPort) error {
	if a.from != want {
		return fmt.Errorf("%w: asked for %s, came from %s", errWrongSource, want, a.from)
	}
	return nil
}
