package natcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
)

// Run classifies the network between this host and opts.Server. It returns
// an error only when it could not test at all (bad options, no socket, the
// server's answers unusable, ctx done); a test without a result leaves its
// field Unknown with a Note, and no answer at all is Result.UDPBlocked.
func Run(ctx context.Context, opts Options) (Result, error) {
	opts, err := opts.normalize()
	if err != nil {
		return Result{}, err
	}
	server, err := resolve(ctx, opts.Server)
	if err != nil {
		return Result{}, err
	}
	local, err := localFor(opts.Local, server)
	if err != nil {
		return Result{}, err
	}
	c := &checker{opts: opts, server: server, local: local, r: Result{Server: server}}
	err = c.run(ctx)
	return c.r, err
}

// checker runs the tests one after another and fills in r.
type checker struct {
	opts   Options
	server netip.AddrPort
	local  netip.AddrPort // the first socket's; later ones take any port
	r      Result
}

func (c *checker) run(ctx context.Context) error {
	m, err := listen(c.local)
	if err != nil {
		return err
	}
	defer m.close()
	c.r.Local = m.local

	// RFC 5780 section 4.2 and Test I of section 4.3.
	a1, err := c.ask(ctx, m, c.server)
	switch {
	case errors.Is(err, errNoAnswer):
		c.r.UDPBlocked = true
		c.r.note("udp", err.Error())
		return nil
	case err != nil:
		return err
	case !a1.mapped.IsValid():
		return fmt.Errorf("%s: %w", c.server, errNoMapped)
	}
	c.r.Mapped = a1.mapped
	c.r.OtherAddress = a1.other
	c.r.BehindNAT = a1.mapped != m.local

	for _, test := range []func(context.Context) error{
		func(ctx context.Context) error { return c.mapping(ctx, m, a1) },
		c.filtering,
		func(ctx context.Context) error { return c.hairpinning(ctx, m) },
	} {
		if err := test(ctx); err != nil {
			return err
		}
	}
	if c.opts.Lifetime {
		return c.lifetime(ctx)
	}
	return nil
}

// ask sends a Binding request from p to dst and returns its success
// response; an error response is errRefused.
func (c *checker) ask(ctx context.Context, p *prober, dst netip.AddrPort, setters ...stun.Setter) (answer, error) {
	req, err := request(setters...)
	if err != nil {
		return answer{}, err
	}
	a, err := exchange(ctx, c.opts.Timeout, p, dst, req, p, false)
	if err != nil {
		return a, err
	}
	if a.class != stun.ClassSuccessResponse {
		return a, fmt.Errorf("%s answered with %w %d", dst, errRefused, a.code)
	}
	return a, nil
}

// fail records why a test has no result (no answer, an error response, a
// send the network refused), unless the run itself is over.
func (c *checker) fail(test string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", test, err)
	}
	c.r.note(test, err.Error())
	return nil
}

// fresh is a new socket on the local IP, any port.
func (c *checker) fresh() (*prober, error) {
	return listen(netip.AddrPortFrom(c.local.Addr(), 0))
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
