package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// defaultParallel bounds dials (and closes) in flight at once.
const defaultParallel = 64

// IdleOptions configure RunIdle.
type IdleOptions struct {
	WS          string
	Domain      string
	Clients     int
	Hold        time.Duration // all clients stay up this long once they are
	Register    bool
	Password    string
	UserPrefix  string
	Sources     []netip.Addr
	GatewayPids []int
	Parallel    int // dials in flight; default 64
	Progress    io.Writer
	Log         *zap.Logger
}

// RunIdle opens Clients WebSocket clients (registered when Register), holds
// them, and reports the gateway's RSS per client and its open files.
func RunIdle(ctx context.Context, opts IdleOptions) (*IdleResult, error) {
	switch {
	case opts.WS == "":
		return nil, fmt.Errorf("%w: -ws is required", ErrBadFlag)
	case opts.Clients <= 0:
		return nil, fmt.Errorf("%w: -clients must be > 0", ErrBadFlag)
	}
	if opts.UserPrefix == "" {
		opts.UserPrefix = "idle"
	}
	if opts.Parallel <= 0 {
		opts.Parallel = defaultParallel
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	gateway, err := NewTracker(opts.GatewayPids)
	if err != nil {
		return nil, fmt.Errorf("gateway pids: %w", err)
	}
	self, err := newSelfTracker()
	if err != nil {
		return nil, fmt.Errorf("own pid: %w", err)
	}
	trackers := Trackers{gateway, self}
	res := &IdleResult{Clients: opts.Clients, Register: opts.Register, Hold: opts.Hold.String(), RSSBefore: gateway.RSS(), PSSBefore: gateway.PSS()}

	limit := time.Duration(opts.Clients/opts.Parallel+1)*(dialTimeout+registerTimeout) + opts.Hold + runSlack
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	begin := time.Now()
	var up atomic.Int64
	var fails failures
	stopProgress := every(time.Second, func(now time.Time) {
		_ = trackers.Sample()
		if opts.Progress != nil {
			_, failed := fails.snapshot()
			fmt.Fprintf(opts.Progress, "elapsed %5.0fs  clients up %d  failed %d  gateway rss %d KiB\n",
				now.Sub(begin).Seconds(), up.Load(), failed, gateway.RSS())
		}
	})
	defer stopProgress()

	// A Dial needs no media: one API, never used, keeps webua from making one per client.
	clients := make([]*webua.UA, opts.Clients)
	parallel(opts.Clients, opts.Parallel, func(n int) {
		ua, reason := openIdle(ctx, opts, n)
		if reason != "" {
			fails.add(reason)
			return
		}
		clients[n] = ua
		up.Add(1)
	})
	defer parallel(opts.Clients, opts.Parallel, func(n int) {
		if clients[n] != nil {
			_ = clients[n].Close()
		}
	})

	_ = trackers.Sample()
	gateway.ResetPeakRSS()
	hold := time.NewTimer(opts.Hold)
	select {
	case <-hold.C:
	case <-ctx.Done():
		hold.Stop()
	}
	_ = trackers.Sample()
	res.Up = int(up.Load())
	res.Failures, res.Failed = fails.snapshot()
	res.RSSAfter = gateway.RSS()
	res.RSSPeak = gateway.PeakRSS()
	res.PSSAfter = gateway.PSS()
	res.GatewayFDs = gateway.OpenFDs()
	if res.Up > 0 && len(opts.GatewayPids) > 0 {
		res.RSSPerClientKiB = float64(res.RSSAfter-res.RSSBefore) / float64(res.Up)
		res.RSSPeakPerClientKiB = float64(res.RSSPeak-res.RSSBefore) / float64(res.Up)
		res.PSSPerClientKiB = float64(res.PSSAfter-res.PSSBefore) / float64(res.Up)
	}
	res.Gateway = gateway.Usage()
	res.Generator = self.Usage()
	return res, nil
}

// openIdle dials (and registers) client n; a non-empty reason is a failure.
func openIdle(ctx context.Context, opts IdleOptions, n int) (*webua.UA, string) {
	cfg := webua.Config{
		URL:      opts.WS,
		AoR:      fmt.Sprintf("sip:%s%d@%s", opts.UserPrefix, n, opts.Domain),
		Password: opts.Password,
		Log:      opts.Log,
		API:      idleAPI(),
	}
	if len(opts.Sources) > 0 {
		cfg.LocalIP = net.IP(opts.Sources[n%len(opts.Sources)].AsSlice())
	}
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	ua, err := webua.Dial(dialCtx, cfg)
	cancel()
	if err != nil {
		return nil, failureReason("dial", err)
	}
	if !opts.Register {
		return ua, ""
	}
	regCtx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	res, err := ua.Register(regCtx, registerExpiry)
	if err == nil && !res.IsSuccess() {
		err = &webua.StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	if err != nil {
		_ = ua.Close()
		return nil, failureReason("register", err)
	}
	return ua, ""
}

var idleAPI = sync.OnceValue(webua.NewAPI)

// parallel runs f(0..n-1) on at most width goroutines and waits for them.
func parallel(n, width int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(width, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// every calls f each interval on its own goroutine until stop is called;
// stop waits for it.
func every(interval time.Duration, f func(now time.Time)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				f(now)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}
