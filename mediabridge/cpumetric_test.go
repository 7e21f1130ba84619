//go:build unix

package mediabridge

import (
	"syscall"
	"testing"
	"time"
)

// cpuMeter reports the process CPU time (user+system, every goroutine:
// gateway and peers in this process) per benchmark op as "cpu-ns/op". A
// forwarding benchmark's ns/op is wall time with the poll loop's wake-ups
// in it; CPU per packet is what bounds calls per core.
type cpuMeter struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (m cpuMeter) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-m.start)/float64(b.N), "cpu-ns/op")
	}
}

// reportPacket also reports CPU and wall time per packet as "cpu-ns/pkt"
// and "ns/pkt", for benchmarks that move pkts packets per op.
func (m cpuMeter) reportPacket(b *testing.B, pkts int, wall time.Duration) {
	m.report(b)
	if b.N > 0 {
		n := float64(b.N * pkts)
		b.ReportMetric(float64(processCPU()-m.start)/n, "cpu-ns/pkt")
		b.ReportMetric(float64(wall)/n, "ns/pkt")
	}
}
