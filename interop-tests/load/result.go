package load

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Result is what one run of the generator writes with -json.
type Result struct {
	Mode    string    `json:"mode"` // "calls", "ramp" or "idle"
	Label   string    `json:"label"`
	Command string    `json:"command,omitempty"`
	Started time.Time `json:"started"`
	Machine Machine   `json:"machine"`

	Calls *CallsResult `json:"calls,omitempty"`
	Ramp  *RampResult  `json:"ramp,omitempty"`
	Idle  *IdleResult  `json:"idle,omitempty"`
}

// Machine says where the figures were taken.
type Machine struct {
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel"`
	GoVer    string `json:"go"`
}

// Percentiles of one latency, in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// CallsResult is one calls run (or one ramp level).
type CallsResult struct {
	Calls    int     `json:"calls"`
	Rate     float64 `json:"rate"`
	Duration string  `json:"duration"`
	Register bool    `json:"register"`

	Attempted int            `json:"attempted"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Failures  map[string]int `json:"failures,omitempty"`

	Setup     Percentiles `json:"invite_to_200"`
	FirstEcho Percentiles `json:"invite_to_first_echo"`
	ICEToDTLS Percentiles `json:"ice_to_dtls"`
	RTT       Percentiles `json:"echo_rtt"`

	// Loss counts probes sent inside each call's measuring window (from
	// 500 ms after the answer to 200 ms before the BYE) and their echoes.
	PacketsSent   uint64  `json:"packets_sent"`
	PacketsEchoed uint64  `json:"packets_echoed"`
	LossPct       float64 `json:"loss_pct"`

	// Held is the number of calls up together in the steady window, the
	// stretch between the last answer and the first BYE.
	Held             int     `json:"held"`
	SteadySeconds    float64 `json:"steady_seconds"`
	CPUPerCallMinute float64 `json:"gateway_cpu_s_per_call_minute"`
	CPUBasis         string  `json:"cpu_basis"` // "steady" or "whole run"
	RSSPerCallKiB    float64 `json:"gateway_rss_per_call_kib"`

	Gateway   ProcUsage `json:"gateway"`
	Echo      ProcUsage `json:"echo"`
	Generator ProcUsage `json:"generator"`
}

// RampResult is one ramp: each level and the last that held.
type RampResult struct {
	Levels    []RampLevel `json:"levels"`
	LastHeld  int         `json:"last_level_held"`
	StoppedBy string      `json:"stopped_by"`
}

// RampLevel is one level of concurrent calls.
type RampLevel struct {
	Calls  int         `json:"calls"`
	Held   bool        `json:"held"`
	Reason string      `json:"reason,omitempty"` // why it did not hold
	Result CallsResult `json:"result"`
}

// IdleResult is one idle-clients run.
type IdleResult struct {
	Clients   int            `json:"clients"`
	Up        int            `json:"up"`
	Failed    int            `json:"failed"`
	Failures  map[string]int `json:"failures,omitempty"`
	Register  bool           `json:"register"`
	Hold      string         `json:"hold"`
	RSSBefore int64          `json:"gateway_rss_before_kib"`
	// RSSAfter is the gateway's RSS at the end of the hold: the steady
	// state an operator sees once the burst of registrations is digested.
	RSSAfter int64 `json:"gateway_rss_after_kib"`
	// RSSPeak is the highest RSS while all were up (garbage not yet collected included).
	RSSPeak int64 `json:"gateway_rss_peak_kib"`
	// RSSPerClientKiB is (after - before) / up; RSSPeakPerClientKiB the same from the peak.
	RSSPerClientKiB     float64 `json:"gateway_rss_per_client_kib"`
	RSSPeakPerClientKiB float64 `json:"gateway_rss_peak_per_client_kib"`
	// PSSBefore and PSSAfter are the gateway's PSS (shared memory counted
	// once) before and at the end of the hold; PSSPerClientKiB from them.
	PSSBefore       int64     `json:"gateway_pss_before_kib"`
	PSSAfter        int64     `json:"gateway_pss_after_kib"`
	PSSPerClientKiB float64   `json:"gateway_pss_per_client_kib"`
	GatewayFDs      int       `json:"gateway_open_fds"`
	Gateway         ProcUsage `json:"gateway"`
	Generator       ProcUsage `json:"generator"`
}

// ProcUsage is what a group of processes (given pids and all their
// descendants) cost during a run.
type ProcUsage struct {
	Pids       []int   `json:"pids,omitempty"`
	Processes  int     `json:"processes"` // seen at the end, descendants included
	CPUSeconds float64 `json:"cpu_seconds"`
	// PeakRSSKiB sums VmHWM over the processes: for one process its peak,
	// for a forking server an upper bound.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	RSSKiB     int64 `json:"rss_kib"` // VmRSS at the end
	// PSSKiB and PeakPSSKiB count memory shared between the processes once:
	// the fair figure for a forking server such as Kamailio.
	PSSKiB     int64 `json:"pss_kib"`
	PeakPSSKiB int64 `json:"peak_pss_kib"`
}

// WriteJSON writes r to path.
func (r *Result) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// ReadResult reads a file written by WriteJSON.
func ReadResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse result %s: %w", path, err)
	}
	return &r, nil
}

// ThisMachine describes the host from /proc.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVer: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}
