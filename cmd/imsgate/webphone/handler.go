package webphone

import (
	"embed"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// InstallHint is what the page and /lib say when the JsSIP library is not on disk.
const InstallHint = "run: npm ci --prefix cmd/imsgate/webphone"

// LibFile is the one file served from libDir, at /lib/jssip.min.js.
const LibFile = "jssip.min.js"

//go:embed static/index.html static/phone.js static/phone.css
var staticFiles embed.FS

// Handler serves the demo web phone: "/" (and /index.html), /phone.js and
// /phone.css from the binary, /lib/jssip.min.js from libDir. Only that one
// library file is read from disk, so no request can reach other files there.
func Handler(libDir string, log *zap.Logger) http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		// Cannot happen: "static" is embedded above. Serve nothing rather than panic.
		log.Error("web phone assets missing", zap.Error(err))
		return http.NotFoundHandler()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", serveEmbedded(static, "index.html"))
	mux.HandleFunc("GET /index.html", serveEmbedded(static, "index.html"))
	mux.HandleFunc("GET /phone.js", serveEmbedded(static, "phone.js"))
	mux.HandleFunc("GET /phone.css", serveEmbedded(static, "phone.css"))
	mux.Handle("GET /lib/"+LibFile, libHandler(filepath.Join(libDir, LibFile), log))
	return mux
}

func serveEmbedded(static fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := static.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		content, ok := f.(io.ReadSeeker) // embed.FS files always seek
		if !ok {
			http.NotFound(w, r)
			return
		}
		// The page is a demo that changes with the binary: never cache it stale.
		w.Header().Set("Cache-Control", "no-cache")
		// ServeContent, not ServeFileFS: the latter redirects /index.html to ./.
		http.ServeContent(w, r, name, time.Time{}, content)
	}
}

func libHandler(path string, log *zap.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				log.Warn("web phone library missing", zap.String("path", path), zap.String("reason", InstallHint))
			} else {
				log.Error("open web phone library", zap.String("path", path), zap.Error(err))
			}
			http.Error(w, InstallHint, http.StatusServiceUnavailable)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			http.Error(w, InstallHint, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeContent(w, r, LibFile, st.ModTime(), f)
	}
}
