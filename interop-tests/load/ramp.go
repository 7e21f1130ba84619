package load

import (
	"context"
	"fmt"
)

// Limits a ramp level must stay within to hold (issue 3).
const (
	rampMaxLossPct = 0.5
	rampMaxRTTP99  = 50.0 // ms
)

// RampOptions configure RunRamp. Calls.Calls is ignored: each level sets it;
// Calls.Duration is the hold at each level.
type RampOptions struct {
	Calls CallsOptions
	Start int
	Step  int
	Max   int
}

// RunRamp runs levels of Start, Start+Step, ... concurrent calls (each level
// a full RunCalls: set up, hold, hang up) until a level loses more than
// 0.5 % of its packets, has an echo RTT p99 over 50 ms, has any failed
// call, or Max is done. It reports every level and the last that held.
func RunRamp(ctx context.Context, opts RampOptions) (*RampResult, error) {
	if opts.Start <= 0 || opts.Step <= 0 || opts.Max < opts.Start {
		return nil, fmt.Errorf("%w: ramp needs -start > 0, -step > 0, -max >= -start", ErrBadFlag)
	}
	res := &RampResult{StoppedBy: "max reached"}
	for level := opts.Start; level <= opts.Max; level += opts.Step {
		if err := ctx.Err(); err != nil {
			res.StoppedBy = "interrupted"
			break
		}
		if opts.Calls.Progress != nil {
			fmt.Fprintf(opts.Calls.Progress, "ramp level %d calls\n", level)
		}
		lo := opts.Calls
		lo.Calls = level
		r, err := RunCalls(ctx, lo)
		if err != nil {
			return nil, fmt.Errorf("ramp level %d: %w", level, err)
		}
		reason := levelVerdict(r)
		res.Levels = append(res.Levels, RampLevel{Calls: level, Held: reason == "", Reason: reason, Result: *r})
		if reason != "" {
			res.StoppedBy = fmt.Sprintf("level %d: %s", level, reason)
			break
		}
		res.LastHeld = level
	}
	return res, nil
}

// levelVerdict is empty when the level held, else why not.
func levelVerdict(r *CallsResult) string {
	switch {
	case r.Failed > 0:
		return fmt.Sprintf("%d failed calls", r.Failed)
	case r.LossPct > rampMaxLossPct:
		return fmt.Sprintf("loss %.3f %% > %.1f %%", r.LossPct, rampMaxLossPct)
	case r.RTT.P99 > rampMaxRTTP99:
		return fmt.Sprintf("RTT p99 %.1f ms > %.0f ms", r.RTT.P99, rampMaxRTTP99)
	}
	return ""
}
