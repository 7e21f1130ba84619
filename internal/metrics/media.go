package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imsgate/imsgate/mediabridge"
)

// Media hears how each call's browser media came up
// (mediabridge.WithSetupObserver).
type Media struct {
	handshake *prometheus.HistogramVec
	setup     *prometheus.HistogramVec
	failures  prometheus.Counter
}

// NewMedia registers the media setup metrics in reg.
func NewMedia(reg prometheus.Registerer) *Media {
	m := &Media{
		handshake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imsgate_dtls_handshake_seconds",
			Help:    "DTLS handshakes with browsers that installed SRTP keys, by the transport the media took (udp, tcp: ICE-TCP).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}, []string{"transport"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imsgate_webrtc_setup_seconds",
			Help:    "Time from a call's media session (its offer) to the browser's media keyed: ICE and DTLS, and the wait for the browser's answer or checks.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30},
		}, []string{"transport"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imsgate_webrtc_setup_failures_total",
			Help: "Browser media that never came up: the DTLS handshake or the SRTP keys failed.",
		}),
	}
	reg.MustRegister(m.handshake, m.setup, m.failures)
	return m
}

// Setup takes one session's report.
func (m *Media) Setup(r mediabridge.SetupReport) {
	if r.Err != nil {
		m.failures.Inc()
		return
	}
	t := r.Transport.String()
	m.handshake.WithLabelValues(t).Observe(r.Handshake.Seconds())
	m.setup.WithLabelValues(t).Observe(r.Setup.Seconds())
}
