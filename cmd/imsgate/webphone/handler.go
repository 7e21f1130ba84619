package webphone

import (
	"embed"
	"io/fs"
	"net/http"
	"path/filepath"

	"github.com/imsgate/imsgate/internal/pageassets"
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
	mux.HandleFunc("GET /{$}", pageassets.Embedded(static, "index.html", ""))
	mux.HandleFunc("GET /index.html", pageassets.Embedded(static, "index.html", ""))
	mux.HandleFunc("GET /phone.js", pageassets.Embedded(static, "phone.js", ""))
	mux.HandleFunc("GET /phone.css", pageassets.Embedded(static, "phone.css", ""))
	mux.Handle("GET /lib/"+LibFile, pageassets.Library(filepath.Join(libDir, LibFile), InstallHint, log))
	return mux
}
