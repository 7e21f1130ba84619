// Command imsgate runs the WebSocket-to-SIP gateway.
//
//	imsgate                  # embedded demo config: demo core, web phone, loopback only
//	imsgate -config FILE     # production: YAML config (see configs/)
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
)

// drainTimeout bounds how long SIGTERM waits for calls to end.
const drainTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
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

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig := <-sigs
	log.Info("signal received: draining; a second signal stops at once", zap.String("signal", sig.String()))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
	}()
	a.drain(ctx, drainTimeout)
	if err := a.close(ctx); err != nil {
		log.Error("stopped with error", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
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
