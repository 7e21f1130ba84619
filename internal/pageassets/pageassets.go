// Package pageassets serves the gateway's own pages: their files embedded in
// the binary, and the one or two library files each loads from where npm
// installed them (never embedded or committed). Only the files named are
// read from disk, so no request reaches anything else there.
package pageassets

import (
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Embedded serves the file name of static, never cached stale (the pages
// change with the binary), never sniffed, and under the Content-Security-
// Policy csp when one is given.
func Embedded(static fs.FS, name, csp string) http.HandlerFunc {
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
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if csp != "" {
			h.Set("Content-Security-Policy", csp)
		}
		// ServeContent, not ServeFileFS: the latter redirects /index.html to ./.
		http.ServeContent(w, r, name, time.Time{}, content)
	}
}

// Library serves the file at path, installed by npm; while it is missing,
// 503 with hint (the command that installs it), logged at warn.
func Library(path, hint string, log *zap.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				log.Warn("page library missing", zap.String("path", path), zap.String("reason", hint))
			} else {
				log.Error("open page library", zap.String("path", path), zap.Error(err))
			}
			http.Error(w, hint, http.StatusServiceUnavailable)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			http.Error(w, hint, http.StatusServiceUnavailable)
			return
		}
		if ct := mime.TypeByExtension(filepath.Ext(path)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		http.ServeContent(w, r, filepath.Base(path), st.ModTime(), f)
	}
}
