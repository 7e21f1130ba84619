// Package history keeps the last hour of the gateway's calls for the status
// page's charts: a point every few seconds with the calls up, the calls
// started and ended since the last point, their mean setup time and the
// mean MOS of the calls that ended. It lives in memory, a fixed number of
// points; Prometheus keeps the long history.
package history

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/imsgate/imsgate/b2bua"
)

// Point is one sample.
type Point struct {
	At          time.Time `json:"at"`
	CallsActive int       `json:"calls_active"`
	Started     int       `json:"started"`
	Ended       int       `json:"ended"`
	// SetupMs is the mean setup time of the calls answered since the last
	// point; MOS the mean of the calls that ended with media, each rated
	// by its worse leg. Zero when there were none.
	SetupMs float64 `json:"setup_ms,omitempty"`
	MOS     float64 `json:"mos,omitempty"`
}

// History samples every interval and keeps the points of the last span. It
// is a b2bua.Observer.
type History struct {
	every  time.Duration
	keep   int
	active func() int
	stop   chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	points []Point // oldest first, at most keep
	// What is gathering for the next point.
	started, ended   int
	setupSum, mosSum float64
	setupN, mosN     int
}

// New samples active every interval, keeping span's worth.
func New(every, span time.Duration, active func() int) *History {
	return &History{every: every, keep: int(span / every), active: active}
}

// Start samples until Close.
func (h *History) Start() {
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		tick := time.NewTicker(h.every)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case at := <-tick.C:
				h.sample(at)
			}
		}
	}()
}

// Close stops the sampling.
func (h *History) Close() {
	if h.stop != nil {
		close(h.stop)
		<-h.done
	}
}

func (h *History) sample(at time.Time) {
	active := h.active()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := Point{At: at, CallsActive: active, Started: h.started, Ended: h.ended}
	if h.setupN > 0 {
		p.SetupMs = h.setupSum / float64(h.setupN)
	}
	if h.mosN > 0 {
		p.MOS = h.mosSum / float64(h.mosN)
	}
	h.points = append(h.points, p)
	if len(h.points) > h.keep {
		h.points = h.points[1:]
	}
	h.started, h.ended, h.setupSum, h.mosSum, h.setupN, h.mosN = 0, 0, 0, 0, 0, 0
}

// CallStateChanged counts a call in and times its answer.
func (h *History) CallStateChanged(call b2bua.CallInfo, state b2bua.CallState, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch state {
	case b2bua.StateCalling:
		h.started++
	case b2bua.StateConfirmed:
		h.setupSum += float64(at.Sub(call.Started)) / float64(time.Millisecond)
		h.setupN++
	}
}

// CallEnded counts a call out with its quality.
func (h *History) CallEnded(call b2bua.CallInfo, _ b2bua.Cause, _ time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended++
	if s := call.Summary; s != nil {
		mos := s.QoS.Web.MOS
		if c := s.QoS.Core.MOS; c != 0 && (mos == 0 || c < mos) {
			mos = c
		}
		if mos != 0 {
			h.mosSum += mos
			h.mosN++
		}
	}
}

// Points is the history, oldest first.
func (h *History) Points() []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Point{}, h.points...)
}

// Handler serves GET /api/stats: {"now": now(), "every_s": …, "history": […]}.
func Handler(h *History, now func() any) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"now": now(), "every_s": h.every.Seconds(), "history": h.Points()})
	})
	return mux
}
