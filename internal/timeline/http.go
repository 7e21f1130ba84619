package timeline

import (
	"encoding/json"
	"net/http"
)

// Handler serves the timelines as JSON:
//
//	GET /api/calls       {"active": [...], "ended": [...]}: calls without events
//	GET /api/calls/{id}  one call with its events, by the gateway's id or
//	                     either leg's Call-ID; 404 when it is not kept
func Handler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/calls", func(w http.ResponseWriter, _ *http.Request) {
		active, ended := s.List()
		if active == nil {
			active = []Call{}
		}
		if ended == nil {
			ended = []Call{}
		}
		writeJSON(w, http.StatusOK, map[string][]Call{"active": active, "ended": ended})
	})
	mux.HandleFunc("GET /api/calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.Get(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such call: it never was, or it ended too long ago to be kept"})
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
