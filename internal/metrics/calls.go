package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/mediabridge"
)

// Calls is a b2bua.Observer counting calls: it only adds to counters and
// histograms, which do not block.
type Calls struct {
	started *prometheus.CounterVec
	ended   *prometheus.CounterVec
	setup   prometheus.Histogram
	pdd     prometheus.Histogram
	// Media and its quality, per leg, as each call ends.
	packets, bytes         *prometheus.CounterVec
	mos, loss, jitter, rtt *prometheus.HistogramVec
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
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imsgate_media_packets_total",
			Help: "RTP packets relayed, by direction (web_to_core, core_to_web), counted as each call ends.",
		}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imsgate_media_bytes_total",
			Help: "RTP bytes (headers included) relayed, by direction (web_to_core, core_to_web), counted as each call ends.",
		}, []string{"direction"}),
		mos: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imsgate_call_mos",
			Help:    "Calls' quality at their end by leg (web, core): the ITU-T G.107 E-model's MOS from the leg's loss, jitter, round trip and codec.",
			Buckets: []float64{1, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.3, 4.4, 4.5},
		}, []string{"leg"}),
		loss: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imsgate_call_packet_loss_ratio",
			Help:    "Calls' packet loss at their end by leg (web, core): the worse of what the gateway received and what the far end reported.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5},
		}, []string{"leg"}),
		jitter: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imsgate_call_jitter_seconds",
			Help:    "Calls' RTP interarrival jitter (RFC 3550) at their end by leg (web, core): the worse of the gateway's and the far end's.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16},
		}, []string{"leg"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imsgate_call_rtt_seconds",
			Help:    "Calls' round trip between the gateway and the far end by leg (web, core), from RTCP (LSR/DLSR), at their end.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8},
		}, []string{"leg"}),
	}
	reg.MustRegister(c.started, c.ended, c.setup, c.pdd, c.packets, c.bytes, c.mos, c.loss, c.jitter, c.rtt)
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
func (c *Calls) CallEnded(call b2bua.CallInfo, cause b2bua.Cause, _ time.Time) {
	c.ended.WithLabelValues(cause.Reason.String(), cause.By.String(), statusLabel(cause.Status)).Inc()
	s := call.Summary
	if s == nil {
		return
	}
	c.packets.WithLabelValues("web_to_core").Add(float64(s.WebToCore.Packets))
	c.packets.WithLabelValues("core_to_web").Add(float64(s.CoreToWeb.Packets))
	c.bytes.WithLabelValues("web_to_core").Add(float64(s.WebToCore.Bytes))
	c.bytes.WithLabelValues("core_to_web").Add(float64(s.CoreToWeb.Bytes))
	c.observeLeg("web", s.QoS.Web)
	c.observeLeg("core", s.QoS.Core)
}

// observeLeg puts a leg's quality in the histograms, if media flowed on it.
func (c *Calls) observeLeg(leg string, q mediabridge.LegQoS) {
	if q.MOS == 0 {
		return
	}
	c.mos.WithLabelValues(leg).Observe(q.MOS)
	c.loss.WithLabelValues(leg).Observe(max(q.LossPercent, q.RemoteLossPercent) / 100)
	c.jitter.WithLabelValues(leg).Observe(max(q.JitterMs, q.RemoteJitterMs) / 1000)
	if q.RTTMs > 0 {
		c.rtt.WithLabelValues(leg).Observe(q.RTTMs / 1000)
	}
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
