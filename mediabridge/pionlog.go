package mediabridge

import (
	"github.com/pion/logging"
	"go.uber.org/zap"
)

// pionLoggerFactory adapts zap to pion's LoggerFactory so pion/dtls logs
// land in the session's log with a scope key.
type pionLoggerFactory struct{ log *zap.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{s: f.log.With(zap.String("pion_scope", scope)).Sugar()}
}

type pionLogger struct{ s *zap.SugaredLogger }

// pion's trace level is noisier than our debug; both go to debug. pion's
// info lines are handshake chatter, so they go to debug too; the session
// logs what matters (connected, failed) with its call fields.
func (l pionLogger) Trace(msg string)                  { l.s.Debug(msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.s.Debugf(format, args...) }
func (l pionLogger) Debug(msg string)                  { l.s.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.s.Debugf(format, args...) }
func (l pionLogger) Info(msg string)                   { l.s.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.s.Debugf(format, args...) }
func (l pionLogger) Warn(msg string)                   { l.s.Warn(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.s.Warnf(format, args...) }

// pion's errors are a peer's or a closing call's (a write on a closed pipe
// at hangup), not the gateway's own: warn.
func (l pionLogger) Error(msg string)                  { l.s.Warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.s.Warnf(format, args...) }
