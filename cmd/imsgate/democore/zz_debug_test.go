package democore_test

import (
	"log/slog"
	"os"

	"github.com/emiago/sipgo/sip"
)

func init() {
	if os.Getenv("SIPGO_DEBUG") != "" {
		sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
}
