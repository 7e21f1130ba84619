//go:build interop

package interop

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// dialWebUA connects the Go browser (webua: pion media over the gateway's
// real WebSocket) as aor, password "secret"; its debug log goes to
// artifacts/<test>/webua.log. Cleanup closes it and waits for everything it
// started, so the suite's goroutine check stays meaningful.
func dialWebUA(t *testing.T, aor string) *webua.UA {
	t.Helper()
	return dialWebUAWith(t, "webua", webua.Config{URL: "ws://" + gatewayWSAddr + "/", AoR: aor, Password: "secret"})
}

// dialWebUAWith is dialWebUA with a config of its own (a token in the URL,
// a source address); the log goes to artifacts/<test>/<name>.log.
func dialWebUAWith(t *testing.T, name string, cfg webua.Config) *webua.UA {
	t.Helper()
	logFile, err := os.Create(filepath.Join(artifactDir(t), name+".log"))
	if err != nil {
		t.Fatalf("webua log: %v", err)
	}
	cfg.Log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.Lock(logFile), zap.DebugLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ua, err := webua.Dial(ctx, cfg)
	if err != nil {
		logFile.Close()
		t.Fatalf("webua: %v", err)
	}
	t.Cleanup(func() {
		if err := ua.Close(); err != nil {
			t.Logf("webua close: %v", err)
		}
		logFile.Close()
	})
	return ua
}

// registerWebUA registers through the gateway at Kamailio (digest passes
// through to the webua), so calls to its AoR reach it. Cleanup unregisters
// while the gateway still runs, as a browser tab does before it closes:
// otherwise the WebSocket's close starts a de-registration that the
// gateway's shutdown, a moment later, cuts off mid-transaction (which has
// crashed the gateway: sipgo's Client.Do can then return no response and no
// error).
func registerWebUA(t *testing.T, gw *proc, ua *webua.UA) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ua.Register(ctx, 600*time.Second)
	if err != nil {
		failGateway(t, gw, "register: %v", err)
	}
	if !res.IsSuccess() {
		failGateway(t, gw, "register: %d %s", res.StatusCode, res.Reason)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := ua.Unregister(ctx)
		switch {
		case err != nil:
			t.Logf("unregister: %v", err)
		case !res.IsSuccess():
			t.Logf("unregister: %d %s", res.StatusCode, res.Reason)
		}
	})
}
