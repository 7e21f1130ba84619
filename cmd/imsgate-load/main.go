// Command imsgate-load drives load against a SIP-over-WebSocket gateway
// (imsgate, or Kamailio + rtpengine for comparison) and serves the echo UAS
// behind it. See interop-tests/load for what each mode measures.
//
//	imsgate-load echo    -listen 127.0.0.1:5080 -media-ip 127.0.0.1 [-domain imsgate.test]
//	imsgate-load calls   -ws URL -target URI -domain D -calls N -rate R -duration D [...]
//	imsgate-load ramp    (calls flags) -start 50 -step 50 -max 1000 -step-duration 20s
//	imsgate-load idle    -ws URL -clients N -hold 30s [-register] -gateway-pids P [...]
//	imsgate-load compare -out FILE a.json b.json [more.json ...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imsgate/imsgate/interop-tests/load"
)

const usage = `usage: imsgate-load <echo|calls|ramp|idle|compare> [flags]
run "imsgate-load <mode> -h" for the flags of a mode`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	mode, rest := args[0], args[1:]
	var err error
	switch mode {
	case "echo":
		err = runEcho(ctx, rest)
	case "calls", "ramp":
		err = runCalls(ctx, mode, rest)
	case "idle":
		err = runIdle(ctx, rest)
	case "compare":
		err = runCompare(rest)
	default:
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, load.ErrBadFlag):
		fmt.Fprintln(os.Stderr, "imsgate-load:", err)
		return 2
	case err != nil:
		fmt.Fprintln(os.Stderr, "imsgate-load:", err)
		return 1
	}
	return 0
}

// flagError makes a parse error exit 2; -h stays ErrHelp (exit 0).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", load.ErrBadFlag, err)
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("%w: -log-level: %w", load.ErrBadFlag, err)
	}
	zc := zap.NewDevelopmentConfig()
	zc.DisableStacktrace = true
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log, nil
}

func runEcho(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5080", "SIP host:port, UDP and TCP")
	mediaIP := fs.String("media-ip", "127.0.0.1", "address for RTP sockets and SDP")
	domain := fs.String("domain", "imsgate.test", "home domain")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error (stderr)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	defer log.Sync()
	return load.RunEcho(ctx, load.EchoOptions{Listen: *listen, MediaIP: *mediaIP, Domain: *domain, Log: log},
		func(addr string) { fmt.Printf("ready %s\n", addr) })
}

// commonFlags are the flags calls, ramp and idle share.
type commonFlags struct {
	ws, domain, password, userPrefix string
	gatewayPids, sources             string
	jsonOut, label, logLevel         string
	cpuProfile                       string
	register                         bool
}

func (c *commonFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.ws, "ws", "ws://127.0.0.1:8080/", "gateway WebSocket URL")
	fs.StringVar(&c.domain, "domain", "imsgate.test", "domain of the callers' AoRs")
	fs.BoolVar(&c.register, "register", false, "REGISTER each client first")
	fs.StringVar(&c.password, "password", "", "digest password (answers 401/407 when set)")
	fs.StringVar(&c.userPrefix, "user-prefix", "load", "AoR user prefix: sip:<prefix><n>@<domain>")
	fs.StringVar(&c.gatewayPids, "gateway-pids", "", "gateway pids, comma separated (descendants included)")
	fs.StringVar(&c.sources, "sources", "", "WebSocket source addresses, e.g. 127.0.0.1-127.0.0.8")
	fs.StringVar(&c.jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&c.label, "label", "imsgate", "name of the system under test in the result")
	fs.StringVar(&c.logLevel, "log-level", "error", "debug, info, warn or error (stderr)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile here (is it the limit?)")
}

// parse parses args and turns the common flags into a logger, the gateway
// pids and the source addresses.
func (c *commonFlags) parse(fs *flag.FlagSet, args []string) (*zap.Logger, []int, []netip.Addr, error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, nil, flagError(err)
	}
	pids, err := load.ParsePids(c.gatewayPids)
	if err != nil {
		return nil, nil, nil, err
	}
	sources, err := load.ParseSources(c.sources)
	if err != nil {
		return nil, nil, nil, err
	}
	log, err := newLogger(c.logLevel)
	if err != nil {
		return nil, nil, nil, err
	}
	return log, pids, sources, nil
}

// startProfile starts the CPU profile when asked; stop writes it.
func (c *commonFlags) startProfile() (stop func(), err error) {
	if c.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func runCalls(ctx context.Context, mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	var c commonFlags
	c.add(fs)
	target := fs.String("target", "sip:echo@imsgate.test", "Request-URI to call")
	calls := fs.Int("calls", 20, "number of calls")
	rate := fs.Float64("rate", 10, "calls started per second")
	duration := fs.Duration("duration", 10*time.Second, "hold time of each call after its answer")
	echoPids := fs.String("echo-pids", "", "echo target pids, comma separated")
	start := fs.Int("start", 50, "ramp: first level of concurrent calls")
	step := fs.Int("step", 50, "ramp: calls added per level")
	maxLevel := fs.Int("max", 1000, "ramp: last level tried")
	stepDuration := fs.Duration("step-duration", 20*time.Second, "ramp: hold time at each level")
	log, gatewayPids, sources, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	defer log.Sync()
	opts := load.CallsOptions{
		WS: c.ws, Target: *target, Domain: c.domain, Calls: *calls, Rate: *rate, Duration: *duration,
		Register: c.register, Password: c.password, UserPrefix: c.userPrefix, Progress: os.Stderr, Log: log,
		GatewayPids: gatewayPids, Sources: sources,
	}
	if opts.EchoPids, err = load.ParsePids(*echoPids); err != nil {
		return err
	}
	stopProfile, err := c.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	res := c.newResult(mode, args)
	if mode == "calls" {
		r, err := load.RunCalls(ctx, opts)
		if err != nil {
			return err
		}
		r.WriteText(os.Stdout)
		res.Calls = r
	} else {
		opts.Duration = *stepDuration
		r, err := load.RunRamp(ctx, load.RampOptions{Calls: opts, Start: *start, Step: *step, Max: *maxLevel})
		if err != nil {
			return err
		}
		r.WriteText(os.Stdout)
		res.Ramp = r
	}
	return c.writeJSON(res)
}

func runIdle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	var c commonFlags
	c.add(fs)
	clients := fs.Int("clients", 2000, "number of idle WebSocket clients")
	hold := fs.Duration("hold", 30*time.Second, "how long all clients stay up")
	log, gatewayPids, sources, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	defer log.Sync()
	opts := load.IdleOptions{
		WS: c.ws, Domain: c.domain, Clients: *clients, Hold: *hold, Register: c.register,
		Password: c.password, UserPrefix: c.userPrefix, Progress: os.Stderr, Log: log,
		GatewayPids: gatewayPids, Sources: sources,
	}
	stopProfile, err := c.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	r, err := load.RunIdle(ctx, opts)
	if err != nil {
		return err
	}
	r.WriteText(os.Stdout)
	res := c.newResult("idle", args)
	res.Idle = r
	return c.writeJSON(res)
}

func (c *commonFlags) newResult(mode string, args []string) *load.Result {
	return &load.Result{
		Mode:    mode,
		Label:   c.label,
		Command: "imsgate-load " + mode + " " + strings.Join(args, " "),
		Started: time.Now().UTC(),
		Machine: load.ThisMachine(),
	}
}

func (c *commonFlags) writeJSON(res *load.Result) error {
	if c.jsonOut == "" {
		return nil
	}
	return res.WriteJSON(c.jsonOut)
}

func runCompare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	out := fs.String("out", "", "markdown file to write (stdout when empty)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("%w: compare needs at least two result files", load.ErrBadFlag)
	}
	var results []*load.Result
	for _, path := range fs.Args() {
		r, err := load.ReadResult(path)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	table, err := load.CompareMarkdown(results)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.WriteString(table)
		return err
	}
	if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	return nil
}
