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

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Every phase of a call has a deadline, so a run always ends.
const (
	dialTimeout     = 10 * time.Second
	registerTimeout = 10 * time.Second
	setupTimeout    = 30 * time.Second // INVITE to final response
	hangupTimeout   = 10 * time.Second
	registerExpiry  = 600 * time.Second
	runSlack        = 30 * time.Second // on top of launch span + hold + phase deadlines
	// minSteady is the shortest steady window worth dividing CPU by.
	minSteady = time.Second
)

// CallsOptions configure RunCalls.
type CallsOptions struct {
	WS         string // ws://127.0.0.1:8080/
	Target     string // sip:echo@imsgate.test
	Domain     string // callers are sip:<UserPrefix><n>@<Domain>
	Calls      int
	Rate       float64       // calls started per second
	Duration   time.Duration // each call is held this long after its answer
	Register   bool          // REGISTER before the INVITE
	Password   string        // digest password; empty answers no challenge
	UserPrefix string        // default "load"
	// Sources are the WebSocket source addresses, used round-robin.
	Sources     []netip.Addr
	GatewayPids []int // measured with all their descendants
	EchoPids    []int
	// Progress gets one line a second; nil prints none.
	Progress io.Writer
	Log      *zap.Logger
	API      *webrtc.API // shared by every caller; default webua.NewAPI()
}

func (o *CallsOptions) validate() error {
	switch {
	case o.WS == "":
		return fmt.Errorf("%w: -ws is required", ErrBadFlag)
	case o.Target == "":
		return fmt.Errorf("%w: -target is required", ErrBadFlag)
	case o.Domain == "":
		return fmt.Errorf("%w: -domain is required", ErrBadFlag)
	case o.Calls <= 0:
		return fmt.Errorf("%w: -calls must be > 0", ErrBadFlag)
	case o.Rate <= 0:
		return fmt.Errorf("%w: -rate must be > 0", ErrBadFlag)
	case o.Duration < warmUp+coolDown:
		return fmt.Errorf("%w: -duration must be at least %s", ErrBadFlag, warmUp+coolDown)
	}
	if o.UserPrefix == "" {
		o.UserPrefix = "load"
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.API == nil {
		o.API = webua.NewAPI()
	}
	return nil
}

// callsRun is the state of one RunCalls, shared by its callers.
type callsRun struct {
	opts     CallsOptions
	gateway  *Tracker
	trackers Trackers

	setup, firstEcho, iceToDTLS, rtt Histogram

	started, up, ok atomic.Int64
	echoed          atomic.Uint64
	sent, inWindow  atomic.Uint64 // window counters, summed at call end
	echoedInWindow  atomic.Uint64
	heldNanos       atomic.Int64 // Σ answer→hangup, for the whole-run CPU basis
	fails           failures

	// The steady window runs from the moment every call has its final
	// response to the first hangup; CPU inside it is divided by the calls held.
	mu            sync.Mutex
	pending       int
	hangupStarted bool
	steadyFrom    time.Time
	steadyTo      time.Time
	steadyCPU0    float64
	steadyCPU1    float64
	steadyHeld    int
}

// RunCalls places opts.Calls calls at opts.Rate, holds each for
// opts.Duration with a 20 ms PCMU probe stream, hangs up and reports.
// An error means the run could not start; failed calls are in the result.
func RunCalls(ctx context.Context, opts CallsOptions) (*CallsResult, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	gateway, echo, self, err := newTrackers(opts.GatewayPids, opts.EchoPids)
	if err != nil {
		return nil, err
	}
	r := &callsRun{opts: opts, gateway: gateway, trackers: Trackers{gateway, echo, self}, pending: opts.Calls}
	baseRSS := gateway.RSS()
	gateway.ResetPeakRSS()

	launchSpan := time.Duration(float64(opts.Calls-1) / opts.Rate * float64(time.Second))
	limit := launchSpan + dialTimeout + registerTimeout + setupTimeout + opts.Duration + hangupTimeout + runSlack
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	begin := time.Now()
	stopProgress := r.startProgress(begin)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / opts.Rate)
	next := time.NewTimer(0)
	defer next.Stop()
launch:
	for i := 0; i < opts.Calls; i++ {
		select {
		case <-next.C:
		case <-ctx.Done():
			// Calls never started are failures too: the run was cut short.
			for ; i < opts.Calls; i++ {
				r.fails.add("launch: " + ctx.Err().Error())
				r.setupDone()
			}
			break launch
		}
		next.Reset(time.Until(begin.Add(time.Duration(i+1) * interval)))
		r.started.Add(1)
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			r.runCaller(ctx, n)
		}(i)
	}
	wg.Wait()
	stopProgress()
	_ = r.trackers.Sample()
	return r.result(baseRSS, gateway, echo, self), nil
}

func newTrackers(gatewayPids, echoPids []int) (gateway, echo, self *Tracker, err error) {
	if gateway, err = NewTracker(gatewayPids); err != nil {
		return nil, nil, nil, fmt.Errorf("gateway pids: %w", err)
	}
	if echo, err = NewTracker(echoPids); err != nil {
		return nil, nil, nil, fmt.Errorf("echo pids: %w", err)
	}
	if self, err = newSelfTracker(); err != nil {
		return nil, nil, nil, fmt.Errorf("own pid: %w", err)
	}
	return gateway, echo, self, nil
}

// runCaller is one caller: its own WebSocket, optional REGISTER, INVITE,
// hold with media, BYE.
func (r *callsRun) runCaller(ctx context.Context, n int) {
	setupFinished := false
	finishSetup := func() {
		if !setupFinished {
			setupFinished = true
			r.setupDone()
		}
	}
	defer finishSetup()
	fail := func(stage string, err error) { r.fails.add(failureReason(stage, err)) }

	cfg := webua.Config{
		URL:      r.opts.WS,
		AoR:      fmt.Sprintf("sip:%s%d@%s", r.opts.UserPrefix, n, r.opts.Domain),
		Password: r.opts.Password,
		Log:      r.opts.Log,
		API:      r.opts.API,
	}
	if len(r.opts.Sources) > 0 {
		cfg.LocalIP = net.IP(r.opts.Sources[n%len(r.opts.Sources)].AsSlice())
	}
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	ua, err := webua.Dial(dialCtx, cfg)
	cancel()
	if err != nil {
		fail("dial", err)
		return
	}
	defer ua.Close()

	if r.opts.Register {
		regCtx, cancel := context.WithTimeout(ctx, registerTimeout)
		res, err := ua.Register(regCtx, registerExpiry)
		cancel()
		if err == nil && !res.IsSuccess() {
			err = &webua.StatusError{Code: res.StatusCode, Reason: res.Reason}
		}
		if err != nil {
			fail("register", err)
			return
		}
	}

	probe := &callProbe{rtt: &r.rtt, anyEcho: &r.echoed}
	setupCtx, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	call, err := ua.Invite(setupCtx, r.opts.Target, webua.WithPacketObserver(probe))
	if err != nil {
		fail("invite", err)
		return
	}
	res, err := call.Result(setupCtx)
	if err == nil && !res.IsSuccess() {
		err = &webua.StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	if err != nil {
		fail("invite", err)
		return
	}
	timing := call.Timing()
	probe.setWindow(timing.Answered, r.opts.Duration)
	r.setup.Record(timing.Answered.Sub(timing.InviteSent))
	r.up.Add(1)
	finishSetup()

	hold := time.NewTimer(time.Until(timing.Answered.Add(r.opts.Duration)))
	defer hold.Stop()
	var holdErr error
	select {
	case <-hold.C:
	case <-call.Ended():
		holdErr = fmt.Errorf("%w: %s", errEndedEarly, call.EndReason())
	case <-ctx.Done():
		holdErr = ctx.Err()
	}
	r.hangupStarting()
	r.up.Add(-1)
	r.heldNanos.Add(int64(time.Since(timing.Answered)))
	r.collect(call, probe)
	if holdErr != nil {
		fail("hold", holdErr)
		return
	}
	if call.Timing().FirstEcho.IsZero() {
		_ = r.hangup(ctx, call)
		fail("media", errNoEcho)
		return
	}
	if err := r.hangup(ctx, call); err != nil {
		fail("bye", err)
		return
	}
	r.ok.Add(1)
}

// hangup sends BYE even when the run is being cut short (SIGINT), so the
// gateway is left with no half-open calls; its own deadline bounds it.
func (r *callsRun) hangup(ctx context.Context, call *webua.Call) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hangupTimeout)
	defer cancel()
	return call.HangUp(ctx)
}

// collect adds one call's media figures to the run.
func (r *callsRun) collect(call *webua.Call, probe *callProbe) {
	t := call.Timing()
	if !t.FirstEcho.IsZero() {
		r.firstEcho.Record(t.FirstEcho.Sub(t.InviteSent))
	}
	if !t.ICEConnected.IsZero() && !t.DTLSConnected.IsZero() {
		r.iceToDTLS.Record(t.DTLSConnected.Sub(t.ICEConnected))
	}
	r.sent.Add(probe.sent.Load())
	r.echoedInWindow.Add(probe.echoed.Load())
}

// setupDone notes one call's setup is over; the last one opens the steady window.
func (r *callsRun) setupDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending--
	if r.pending > 0 || r.hangupStarted {
		return
	}
	_ = r.trackers.Sample()
	r.steadyFrom = time.Now()
	r.steadyCPU0 = r.gateway.CPUSeconds()
	r.steadyHeld = int(r.up.Load())
}

// hangupStarting notes a call leaves the hold; the first one closes the steady window.
func (r *callsRun) hangupStarting() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hangupStarted {
		return
	}
	r.hangupStarted = true
	if r.steadyFrom.IsZero() {
		return
	}
	_ = r.trackers.Sample()
	r.steadyTo = time.Now()
	r.steadyCPU1 = r.gateway.CPUSeconds()
}

// startProgress prints a line a second until the returned stop is called,
// sampling the processes on each tick so short-lived ones are not missed.
func (r *callsRun) startProgress(begin time.Time) (stop func()) {
	return every(time.Second, func(now time.Time) {
		_ = r.trackers.Sample()
		if r.opts.Progress == nil {
			return
		}
		_, failed := r.fails.snapshot()
		fmt.Fprintf(r.opts.Progress, "elapsed %5.0fs  started %d  calls up %d  ok %d  failed %d  echoed pkts %d\n",
			now.Sub(begin).Seconds(), r.started.Load(), r.up.Load(), r.ok.Load(), failed, r.echoed.Load())
	})
}

func (r *callsRun) result(baseRSS int64, gateway, echo, self *Tracker) *CallsResult {
	reasons, failed := r.fails.snapshot()
	res := &CallsResult{
		Calls:         r.opts.Calls,
		Rate:          r.opts.Rate,
		Duration:      r.opts.Duration.String(),
		Register:      r.opts.Register,
		Attempted:     r.opts.Calls,
		OK:            int(r.ok.Load()),
		Failed:        failed,
		Failures:      reasons,
		Setup:         r.setup.Summary(),
		FirstEcho:     r.firstEcho.Summary(),
		ICEToDTLS:     r.iceToDTLS.Summary(),
		RTT:           r.rtt.Summary(),
		PacketsSent:   r.sent.Load(),
		PacketsEchoed: r.echoedInWindow.Load(),
		Gateway:       gateway.Usage(),
		Echo:          echo.Usage(),
		Generator:     self.Usage(),
	}
	if res.PacketsSent > 0 {
		lost := float64(res.PacketsSent) - float64(min(res.PacketsEchoed, res.PacketsSent))
		res.LossPct = 100 * lost / float64(res.PacketsSent)
	}
	r.mu.Lock()
	steady := r.steadyTo.Sub(r.steadyFrom)
	held := r.steadyHeld
	cpu := r.steadyCPU1 - r.steadyCPU0
	r.mu.Unlock()
	if !r.steadyTo.IsZero() && steady >= minSteady && held > 0 {
		res.Held = held
		res.SteadySeconds = steady.Seconds()
		res.CPUBasis = "steady"
		res.CPUPerCallMinute = cpu / (float64(held) * steady.Minutes())
	} else if callMinutes := time.Duration(r.heldNanos.Load()).Minutes(); callMinutes > 0 {
		// Calls never all up together: divide the whole run's CPU by the call-minutes held.
		res.Held = int(r.up.Load())
		res.CPUBasis = "whole run"
		res.CPUPerCallMinute = res.Gateway.CPUSeconds / callMinutes
	}
	if n := max(res.Held, res.OK); n > 0 && len(r.opts.GatewayPids) > 0 {
		res.RSSPerCallKiB = float64(gateway.PeakRSS()-baseRSS) / float64(n)
	}
	return res
}
