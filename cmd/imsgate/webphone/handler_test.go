package webphone

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHandler(t *testing.T) {
	const fakeLib = "/* fake JsSIP */ var JsSIP = {};"
	withLib := t.TempDir()
	if err := os.WriteFile(filepath.Join(withLib, LibFile), []byte(fakeLib), 0o644); err != nil {
		t.Fatal(err)
	}
	withoutLib := t.TempDir()

	tests := []struct {
		name       string
		libDir     string
		method     string
		path       string
		wantStatus int
		wantType   string // Content-Type prefix; empty skips the check
		wantBody   []string
	}{
		{"index at root", withoutLib, http.MethodGet, "/", 200, "text/html", []string{`id="ws-url"`, `id="register"`, `data-key="#"`, `src="lib/jssip.min.js"`}},
		{"index by name", withLib, http.MethodGet, "/index.html", 200, "text/html", []string{"imsgate web phone"}},
		{"index page names the install command", withoutLib, http.MethodGet, "/", 200, "text/html", []string{InstallHint}},
		{"script", withLib, http.MethodGet, "/phone.js", 200, "text/javascript", []string{"JsSIP.UA", "sendDTMF"}},
		{"style", withLib, http.MethodGet, "/phone.css", 200, "text/css", []string{".keypad"}},
		{"library present", withLib, http.MethodGet, "/lib/jssip.min.js", 200, "text/javascript", []string{fakeLib}},
		{"library missing", withoutLib, http.MethodGet, "/lib/jssip.min.js", 503, "text/plain", []string{InstallHint}},
		{"library dir is empty string", "", http.MethodGet, "/lib/jssip.min.js", 503, "text/plain", []string{InstallHint}},
		{"other lib files are not served", withLib, http.MethodGet, "/lib/jssip.js", 404, "", nil},
		{"unknown path", withLib, http.MethodGet, "/nope", 404, "", nil},
		{"post refused", withLib, http.MethodPost, "/", 405, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler(tc.libDir, zap.NewNop())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			res := rec.Result()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", res.StatusCode, tc.wantStatus, body)
			}
			if got := res.Header.Get("Content-Type"); tc.wantType != "" && !strings.HasPrefix(got, tc.wantType) {
				t.Errorf("Content-Type = %q, want %s...", got, tc.wantType)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(string(body), want) {
					t.Errorf("body lacks %q", want)
				}
			}
		})
	}
}

// TestHandlerOverHTTP serves the page through a real listener, as the gateway does.
func TestHandlerOverHTTP(t *testing.T) {
	srv := httptest.NewServer(Handler(t.TempDir(), zap.NewNop()))
	t.Cleanup(srv.Close)
	res, err := srv.Client().Get(srv.URL + "/lib/jssip.min.js")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), InstallHint) {
		t.Fatalf("got %d %q, want 503 with %q", res.StatusCode, body, InstallHint)
	}
}
