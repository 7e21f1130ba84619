package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry is a registry holding the Go runtime's and the process's
// collectors (go_*, process_*).
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// snapshot exposes one metric per key of a map read at scrape time: the
// parts keep their counts in maps of their own (refusals by reason, DTMF
// digits by form), and this turns keys into label values.
type snapshot struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	read   func() map[string]uint64
	labels func(key string) []string // nil: the key is the one label's value
}

func (s snapshot) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

func (s snapshot) Collect(ch chan<- prometheus.Metric) {
	for k, v := range s.read() {
		values := []string{k}
		if s.labels != nil {
			values = s.labels(k)
		}
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, float64(v), values...)
	}
}

// values exposes fixed metrics read together at scrape time (a Stats
// struct): each entry is a desc, its label values and how to read it.
type values struct {
	descs []*prometheus.Desc
	read  func(emit func(desc *prometheus.Desc, kind prometheus.ValueType, v float64, labels ...string))
}

func (v values) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range v.descs {
		ch <- d
	}
}

func (v values) Collect(ch chan<- prometheus.Metric) {
	v.read(func(desc *prometheus.Desc, kind prometheus.ValueType, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, kind, x, labels...)
	})
}
