package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imsgate/imsgate/b2bua"
)

// Calls is a b2bua.Observer counting calls: it only adds to counters and
// histograms, which do not block.
type Calls struct {
	started *prometheus.CounterVec
	ended   *prometheus.CounterVec
	setup   prometheus.Histogram
	pdd     prometheus.Histogram
}

// NewCalls registers the call metrics in reg.
func NewCalls(reg prometheus.Registerer) *Calls {
	c := &Calls{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imsgate_calls_started_total",
			Help: "Calls whose first INVITE reached the gateway, by the side it came from (web, core).",
		}, []string{"origin"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imsgate_calls_ended_total",
			Help: "Calls ended, by end reason, the side that ended them and the SIP status that went with it (none when none did).",
		}, []string{"reason", "by", "status"}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "imsgate_call_setup_seconds",
			Help:    "Time from a call's first INVITE to its answer, acknowledged on both legs.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120},
		}),
		pdd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "imsgate_call_post_dial_delay_seconds",
			Help:    "Post-dial delay: time from a call's first INVITE to its first provisional response with a To tag (ringing or early media), or to its answer when none came first.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30},
		}),
	}
	reg.MustRegister(c.started, c.ended, c.setup, c.pdd)
	return c
}

// CallStateChanged counts a call in when it starts and times its first
// provisional response and its answer.
func (c *Calls) CallStateChanged(call b2bua.CallInfo, state b2bua.CallState, at time.Time) {
	switch state {
	case b2bua.StateCalling:
		c.started.WithLabelValues(call.Origin.String()).Inc()
	case b2bua.StateEarly:
		c.pdd.Observe(at.Sub(call.Started).Seconds())
	case b2bua.StateConfirmed:
		c.setup.Observe(at.Sub(call.Started).Seconds())
		if call.Ringing.IsZero() {
			c.pdd.Observe(at.Sub(call.Started).Seconds())
		}
	}
}

// CallEnded counts the end by its cause.
func (c *Calls) CallEnded(_ b2bua.CallInfo, cause b2bua.Cause, _ time.Time) {
	c.ended.WithLabelValues(cause.Reason.String(), cause.By.String(), statusLabel(cause.Status)).Inc()
}

// statusLabel is a SIP status as a label value: "none" for 0, "other"
// outside 100-699 (a peer may send any number; the label set stays
// bounded).
func statusLabel(code int) string {
	switch {
	case code == 0:
		return "none"
	case code < 100 || code > 699:
		return "other"
	}
	return strconv.Itoa(code)
}
