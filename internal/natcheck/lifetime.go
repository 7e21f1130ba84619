package natcheck

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imsgate/imsgate/internal/stunserver"
)

// lifetimePrecision is the narrowest interval the search splits further.
const lifetimePrecision = 250 * time.Millisecond

// lifetime is RFC 5780 section 4.6: how long a mapping with no traffic
// lasts. Each probe makes a fresh mapping X (Test I), waits, then has a
// second socket Y ask the server to answer to X's mapped port
// (RESPONSE-PORT): the answer reaches X only if the mapping is still
// there. Answers reach X through the same 5-tuple as Test I, so filtering
// does not matter. The idle time doubles from 1 s until a mapping is gone
// (or LifetimeMax), then the search halves the interval between the
// longest alive and the shortest gone.
func (c *checker) lifetime(ctx context.Context) error {
	y, err := c.fresh()
	if err != nil {
		return err
	}
	defer y.close()
	// Can the server do it? Y asks for the answer at its own mapped port.
	ay, err := c.ask(ctx, y, c.server)
	if err != nil {
		return c.fail("lifetime", err)
	}
	if ay.mapped.Addr() != c.r.Mapped.Addr() {
		c.r.note("lifetime", fmt.Sprintf("two sockets got different public IPs (%s, %s): RESPONSE-PORT cannot reach across", ay.mapped.Addr(), c.r.Mapped.Addr()))
		return nil
	}
	if _, err := c.ask(ctx, y, c.server, stunserver.ResponsePort(ay.mapped.Port())); err != nil {
		return c.fail("lifetime", fmt.Errorf("RESPONSE-PORT: %w", err))
	}

	var alive, dead time.Duration
	idle := min(time.Second, c.opts.LifetimeMax)
	for {
		ok, err := c.probe(ctx, y, idle)
		if err != nil {
			return c.fail("lifetime", err)
		}
		if ok {
			alive = idle
		} else {
			dead = idle
		}
		switch {
		case dead == 0 && alive >= c.opts.LifetimeMax:
			c.r.BindingLifetime = alive
			return nil
		case dead == 0:
			idle = min(2*idle, c.opts.LifetimeMax)
		case dead-alive <= max(lifetimePrecision, alive/8):
			c.r.BindingLifetime, c.r.BindingLifetimeDead = alive, dead
			return nil
		default:
			idle = (alive + dead) / 2
		}
	}
}

// probe makes a mapping, leaves it idle, and tells whether it is still
// there.
func (c *checker) probe(ctx context.Context, y *prober, idle time.Duration) (bool, error) {
	x, err := c.fresh()
	if err != nil {
		return false, err
	}
	defer x.close()
	ax, err := c.ask(ctx, x, c.server)
	if err != nil {
		return false, err
	}
	if err := sleep(ctx, idle); err != nil {
		return false, err
	}
	req, err := request(stunserver.ResponsePort(ax.mapped.Port()))
	if err != nil {
		return false, err
	}
	_, err = exchange(ctx, c.opts.Timeout, y, c.server, req, x, false)
	if errors.Is(err, errNoAnswer) {
		return false, nil
	}
	return err == nil, err
}
