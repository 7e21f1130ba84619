package natcheck

import (
	"context"
	"errors"
)

// hairpinning is RFC 5780 section 4.7: a second socket sends a Binding
// request to the first one's mapped address; if the first receives it,
// the NAT hairpins. (Without a NAT the mapped address is the socket's own
// and the answer is trivially yes.)
func (c *checker) hairpinning(ctx context.Context, m *prober) error {
	h, err := c.fresh()
	if err != nil {
		return err
	}
	defer h.close()
	req, err := request()
	if err != nil {
		return err
	}
	_, err = exchange(ctx, c.opts.Timeout, h, c.r.Mapped, req, m, true)
	switch {
	case err == nil:
		c.r.Hairpinning = HairpinningYes
	case errors.Is(err, errNoAnswer):
		c.r.Hairpinning = HairpinningNo
	default:
		return c.fail("hairpinning", err)
	}
	return nil
}
