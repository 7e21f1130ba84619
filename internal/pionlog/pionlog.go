// Package pionlog adapts zap to pion's LoggerFactory, for the pion parts
// the gateway runs (dtls in mediabridge, the TURN server): their lines land
// in the owner's log with a pion_scope key.
package pionlog

import (
	"github.com/pion/logging"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Factory makes pion's loggers on log. pion's trace, debug and info lines
// (handshake chatter, per-request and per-datagram notes) go to debug,
// where zap drops them before formatting; the owner logs what matters with
// its own fields. pion's warnings and errors are about what a peer sent or
// a closing connection, not the gateway's own faults: warnings, passed by
// warnLimit when one is given, so a peer cannot fill the log with them.
func Factory(log *zap.Logger, warnLimit *rate.Limiter) logging.LoggerFactory {
	return factory{log: log, limit: warnLimit}
}

type factory struct {
	log   *zap.Logger
	limit *rate.Limiter
}

func (f factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{s: f.log.With(zap.String("pion_scope", scope)).Sugar(), limit: f.limit}
}

type logger struct {
	s     *zap.SugaredLogger
	limit *rate.Limiter // nil: every warning
}

func (l logger) Trace(msg string)                  { l.s.Debug(msg) }
func (l logger) Tracef(format string, args ...any) { l.s.Debugf(format, args...) }
func (l logger) Debug(msg string)                  { l.s.Debug(msg) }
func (l logger) Debugf(format string, args ...any) { l.s.Debugf(format, args...) }
func (l logger) Info(msg string)                   { l.s.Debug(msg) }
func (l logger) Infof(format string, args ...any)  { l.s.Debugf(format, args...) }

func (l logger) Warn(msg string) {
	if l.limit == nil || l.limit.Allow() {
		l.s.Warn(msg)
	}
}

func (l logger) Warnf(format string, args ...any) {
	if l.limit == nil || l.limit.Allow() {
		l.s.Warnf(format, args...)
	}
}

func (l logger) Error(msg string)                  { l.Warn(msg) }
func (l logger) Errorf(format string, args ...any) { l.Warnf(format, args...) }
