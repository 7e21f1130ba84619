package load

import (
	"fmt"
	"strings"
)

// labelled is everything known about one system under test, merged from
// its calls, ramp and idle results.
type labelled struct {
	label    string
	calls    *CallsResult
	ramp     *RampResult
	idle     *IdleResult
	commands []string
	machine  Machine
}

// CompareMarkdown merges results by label (exactly two labels: the peer and
// imsgate) and returns a markdown table with the ratio imsgate/peer. The
// imsgate side is the one whose label contains "imsgate"; if that does not
// pick one, it is the second label seen.
func CompareMarkdown(results []*Result) (string, error) {
	var order []*labelled
	byLabel := make(map[string]*labelled)
	for _, r := range results {
		l := byLabel[r.Label]
		if l == nil {
			l = &labelled{label: r.Label, machine: r.Machine}
			byLabel[r.Label] = l
			order = append(order, l)
		}
		if r.Command != "" {
			l.commands = append(l.commands, r.Command)
		}
		if r.Calls != nil {
			l.calls = r.Calls
		}
		if r.Ramp != nil {
			l.ramp = r.Ramp
		}
		if r.Idle != nil {
			l.idle = r.Idle
		}
	}
	if len(order) != 2 {
		return "", fmt.Errorf("%w: want results of exactly two labels, got %d", ErrBadResult, len(order))
	}
	peer, ours := order[0], order[1]
	if isImsgate(peer.label) && !isImsgate(ours.label) {
		peer, ours = ours, peer
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| metric | %s | %s | %s/%s |\n|---|---:|---:|---:|\n", peer.label, ours.label, ours.label, peer.label)
	for _, row := range compareRows() {
		pv, pok := row.value(peer)
		ov, ook := row.value(ours)
		if !pok && !ook {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.name, cell(pv, pok, row.format), cell(ov, ook, row.format), ratio(ov, ook, pv, pok))
	}
	m := ours.machine
	fmt.Fprintf(&b, "\nMachine: %s, %d CPUs, Linux %s, %s.\n", m.CPUModel, m.CPUs, m.Kernel, m.GoVer)
	for _, l := range []*labelled{peer, ours} {
		for _, c := range l.commands {
			fmt.Fprintf(&b, "\n- %s: `%s`", l.label, c)
		}
	}
	b.WriteString("\n")
	return b.String(), nil
}

func isImsgate(label string) bool { return strings.Contains(strings.ToLower(label), "imsgate") }

type compareRow struct {
	name   string
	format string
	value  func(l *labelled) (float64, bool)
}

func fromCalls(f func(c *CallsResult) float64) func(l *labelled) (float64, bool) {
	return func(l *labelled) (float64, bool) {
		if l.calls == nil {
			return 0, false
		}
		return f(l.calls), true
	}
}

func compareRows() []compareRow {
	return []compareRow{
		{"calls held", "%.0f", fromCalls(func(c *CallsResult) float64 { return float64(max(c.Held, 0)) })},
		{"calls ok", "%.0f", fromCalls(func(c *CallsResult) float64 { return float64(c.OK) })},
		{"gateway CPU per call-minute (CPU s)", "%.4f", fromCalls(func(c *CallsResult) float64 { return c.CPUPerCallMinute })},
		{"setup INVITE→200 p50 (ms)", "%.2f", fromCalls(func(c *CallsResult) float64 { return c.Setup.P50 })},
		{"setup INVITE→200 p99 (ms)", "%.2f", fromCalls(func(c *CallsResult) float64 { return c.Setup.P99 })},
		{"ICE→DTLS connected p50 (ms)", "%.2f", fromCalls(func(c *CallsResult) float64 { return c.ICEToDTLS.P50 })},
		{"INVITE→first echo p50 (ms)", "%.2f", fromCalls(func(c *CallsResult) float64 { return c.FirstEcho.P50 })},
		{"echo RTT p50 (ms)", "%.3f", fromCalls(func(c *CallsResult) float64 { return c.RTT.P50 })},
		{"echo RTT p99 (ms)", "%.3f", fromCalls(func(c *CallsResult) float64 { return c.RTT.P99 })},
		{"packet loss (%)", "%.3f", fromCalls(func(c *CallsResult) float64 { return c.LossPct })},
		{"gateway RSS per call (KiB)", "%.1f", fromCalls(func(c *CallsResult) float64 { return c.RSSPerCallKiB })},
		{"gateway peak RSS (KiB)", "%.0f", fromCalls(func(c *CallsResult) float64 { return float64(c.Gateway.PeakRSSKiB) })},
		{"gateway RSS per idle client (KiB)", "%.2f", func(l *labelled) (float64, bool) {
			if l.idle == nil {
				return 0, false
			}
			return l.idle.RSSPerClientKiB, true
		}},
		{"gateway PSS per idle client (KiB, shared memory once)", "%.2f", func(l *labelled) (float64, bool) {
			if l.idle == nil || l.idle.PSSAfter == 0 {
				return 0, false
			}
			return l.idle.PSSPerClientKiB, true
		}},
		{"idle clients up", "%.0f", func(l *labelled) (float64, bool) {
			if l.idle == nil {
				return 0, false
			}
			return float64(l.idle.Up), true
		}},
		{"ramp: last level held (calls)", "%.0f", func(l *labelled) (float64, bool) {
			if l.ramp == nil {
				return 0, false
			}
			return float64(l.ramp.LastHeld), true
		}},
	}
}

func cell(v float64, ok bool, format string) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

func ratio(ours float64, oursOK bool, peer float64, peerOK bool) string {
	if !oursOK || !peerOK || peer == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", ours/peer)
}
