package statuspage

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestHandler(t *testing.T) {
	lib := t.TempDir()
	if err := os.WriteFile(filepath.Join(lib, "uPlot.iife.min.js"), []byte("var uPlot;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lib, "secret.txt"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := Handler(lib, zap.NewNop())
	for _, tc := range []struct {
		path, wantType, wantBody string
		code                     int
	}{
		{"/", "text/html", "lib/uPlot.iife.min.js", 200},
		{"/status.js", "text/javascript", "api/calls", 200},
		{"/status.css", "text/css", "#ladder", 200},
		{"/lib/uPlot.iife.min.js", "text/javascript", "var uPlot;", 200},
		{"/lib/uPlot.min.css", "", InstallHint, 503}, // not installed
		{"/lib/secret.txt", "", "", 404},
		{"/handler.go", "", "", 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.wantBody) || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.wantType) {
			t.Errorf("%s: %d %q (%s), want %d with %q", tc.path, rec.Code, rec.Body.String()[:min(60, rec.Body.Len())], rec.Header().Get("Content-Type"), tc.code, tc.wantBody)
		}
	}
}
