package turnserver

import (
	"github.com/pion/logging"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// pionLoggerFactory adapts zap to pion's LoggerFactory. pion/turn's server
// logs at info and debug per request and per datagram (a packet without
// permission, a permission refused): those go to debug, where zap drops
// them before formatting. Its warnings and errors are about what a client
// sent (unknown attributes, a ChannelBind conflict), so they are warnings,
// and one shared limiter keeps a client from filling the log with them:
// this package logs its own refusals, rate-limited per client.
type pionLoggerFactory struct {
	log   *zap.Logger
	limit *rate.Limiter
}

func newPionLoggerFactory(log *zap.Logger) pionLoggerFactory {
	return pionLoggerFactory{log: log, limit: rate.NewLimiter(rate.Limit(5), 20)}
}

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{s: f.log.With(zap.String("pion_scope", scope)).Sugar(), limit: f.limit}
}

type pionLogger struct {
	s     *zap.SugaredLogger
	limit *rate.Limiter
}

func (l pionLogger) Trace(msg string)                  { l.s.Debug(msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.s.Debugf(format, args...) }
func (l pionLogger) Debug(msg string)                  { l.s.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.s.Debugf(format, args...) }
func (l pionLogger) Info(msg string)                   { l.s.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.s.Debugf(format, args...) }

func (l pionLogger) Warn(msg string) {
	if l.limit.Allow() {
		l.s.Warn(msg)
	}
}

func (l pionLogger) Warnf(format string, args ...any) {
	if l.limit.Allow() {
		l.s.Warnf(format, args...)
	}
}

func (l pionLogger) Error(msg string)                  { l.Warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.Warnf(format, args...) }
