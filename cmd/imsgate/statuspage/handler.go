// Package statuspage serves the operator's status page on the admin
// listener: a page of our own (embedded) that draws live counters, charts
// of the last hour, the calls with each leg's quality and a call's ladder
// diagram from /api/stats and /api/calls; and the uPlot charting library,
// read from disk where npm installed it (`npm ci --prefix
// cmd/imsgate/statuspage`), never embedded or committed.
package statuspage

import (
	"embed"
	"io/fs"
	"net/http"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/internal/pageassets"
)

// InstallHint is what /lib says when the charting library is not on disk.
const InstallHint = "run: npm ci --prefix cmd/imsgate/statuspage"

// LibFiles are the files served from the library directory, at /lib/.
var LibFiles = []string{"uPlot.iife.min.js", "uPlot.min.css"}

// pageCSP: the page runs its own script and uPlot's, from this origin only,
// and reads the API of this origin; no inline script.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:"

//go:embed static/index.html static/status.js static/status.css
var staticFiles embed.FS

// Handler serves the page at / (and /index.html), /status.js, /status.css
// and /lib/ from libDir. The page holds no data: what it shows comes from
// the API behind the admin token.
func Handler(libDir string, log *zap.Logger) http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		log.Error("status page assets missing", zap.Error(err))
		return http.NotFoundHandler()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", pageassets.Embedded(static, "index.html", pageCSP))
	for _, name := range []string{"index.html", "status.js", "status.css"} {
		mux.HandleFunc("GET /"+name, pageassets.Embedded(static, name, pageCSP))
	}
	for _, name := range LibFiles {
		mux.Handle("GET /lib/"+name, pageassets.Library(filepath.Join(libDir, name), InstallHint, log))
	}
	return mux
}
