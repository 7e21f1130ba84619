package pionlog

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/time/rate"
)

func TestLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := Factory(zap.New(core), nil).NewLogger("dtls")
	l.Trace("t")
	l.Infof("i %d", 1)
	l.Warn("w")
	l.Errorf("e %s", "x")
	want := []zapcore.Level{zapcore.DebugLevel, zapcore.DebugLevel, zapcore.WarnLevel, zapcore.WarnLevel}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Level != want[i] || e.ContextMap()["pion_scope"] != "dtls" {
			t.Errorf("line %d: %v %v", i, e.Level, e.ContextMap())
		}
	}
}

func TestWarnLimit(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := Factory(zap.New(core), rate.NewLimiter(0, 2)).NewLogger("turn")
	for range 5 {
		l.Warn("peer sent junk")
		l.Debug("kept: debug is not limited")
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 2 {
		t.Fatalf("%d warnings, want the limiter's burst of 2", n)
	}
}
