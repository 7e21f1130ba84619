//go:build !unix

package mediabridge

import (
	"testing"
	"time"
)

// cpuMeter reports nothing where getrusage is missing.
type cpuMeter struct{}

func startCPU() cpuMeter { return cpuMeter{} }

func (cpuMeter) report(*testing.B) {}

func (cpuMeter) reportPacket(*testing.B, int, time.Duration) {}
