// Command imsgate runs the WebSocket-to-SIP gateway.
//
//	imsgate                  # embedded demo config: demo core, web phone, loopback only
//	imsgate -config FILE     # production: YAML config (see configs/)
//	imsgate natcheck [-stun host:port]  # what NAT this network is behind (RFC 5780)
//
// SIGTERM or SIGINT drains and stops (a second one stops at once); SIGHUP
// re-reads the WSS certificate.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/natcheck"
)

// drainTimeout bounds how long SIGTERM waits for calls to end.
const drainTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "natcheck" {
		return natcheck.Main(args[1:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet("imsgate", flag.ContinueOnError)
	path := fs.String("config", "", "YAML config file; without it the embedded demo config is used")
	check := fs.Bool("check", false, "validate the config and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imsgate:", err)
		return 2
	}
	if *check {
		fmt.Println("config ok")
		return 0
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imsgate:", err)
		return 2
	}
	defer log.Sync()
	if *path == "" {
		log.Info("no -config given: running the embedded demo config (loopback only, demo core, web phone)")
	}

	a, err := start(cfg, log)
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return 1
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	sig := a.waitStop(sigs, nil)
	log.Info("signal received: draining; a second signal stops at once", zap.String("signal", sig.String()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secondDone := make(chan struct{})
	go func() {
		defer close(secondDone)
		if a.waitStop(sigs, ctx.Done()) != nil {
			cancel()
		}
	}()
	code := 0
	a.drain(ctx, drainTimeout)
	if err := a.close(ctx); err != nil {
		log.Error("stopped with error", zap.Error(err))
		code = 1
	} else {
		log.Info("stopped")
	}
	cancel()
	<-secondDone
	return code
}

// waitStop reloads the certificates on every SIGHUP until another signal
// comes, and returns that signal; nil when done closes first.
func (a *app) waitStop(sigs <-chan os.Signal, done <-chan struct{}) os.Signal {
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return sig
			}
			a.log.Info("SIGHUP: reloading certificates")
			a.reloadCertificates()
		case <-done:
			return nil
		}
	}
}

func loadConfig(path string) (configs.Config, error) {
	if path == "" {
		return configs.Parse([]byte(configs.DefaultYAML))
	}
	return configs.Load(path)
}

func newLogger(c configs.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	// A stack trace helps no operator read a peer's fault.
	zc.DisableStacktrace = true
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Sampling = nil
	return zc.Build()
}
