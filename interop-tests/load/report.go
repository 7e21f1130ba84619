package load

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// WriteText prints a calls result as a human table.
func (r *CallsResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "calls: attempted %d, ok %d, failed %d\n", r.Attempted, r.OK, r.Failed)
	for _, reason := range sortedKeys(r.Failures) {
		fmt.Fprintf(w, "  failure %q: %d\n", reason, r.Failures[reason])
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency (ms)\tp50\tp95\tp99\tmax\tsamples\t\n")
	for _, row := range []struct {
		name string
		p    Percentiles
	}{
		{"INVITE->200", r.Setup},
		{"INVITE->first echo", r.FirstEcho},
		{"ICE->DTLS connected", r.ICEToDTLS},
		{"echo RTT", r.RTT},
	} {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", row.name, row.p.P50, row.p.P95, row.p.P99, row.p.Max, row.p.Count)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "packets (hold window): sent %d, echoed %d, loss %.3f %%\n", r.PacketsSent, r.PacketsEchoed, r.LossPct)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "process\tcpu s\tpeak rss KiB\trss KiB\tprocesses\t\n")
	for _, row := range []struct {
		name string
		u    ProcUsage
	}{{"gateway", r.Gateway}, {"echo", r.Echo}, {"generator", r.Generator}} {
		fmt.Fprintf(tw, "%s %v\t%.2f\t%d\t%d\t%d\t\n", row.name, row.u.Pids, row.u.CPUSeconds, row.u.PeakRSSKiB, row.u.RSSKiB, row.u.Processes)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "gateway cpu per call-minute: %.4f s (%s: %d calls held for %.1f s); rss per call %.1f KiB\n",
		r.CPUPerCallMinute, r.CPUBasis, r.Held, r.SteadySeconds, r.RSSPerCallKiB)
}

// WriteText prints a ramp result.
func (r *RampResult) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "level\tok\tfailed\tsetup p50 ms\tRTT p99 ms\tloss %%\tcpu s/call-min\theld\t\n")
	for _, l := range r.Levels {
		verdict := "yes"
		if !l.Held {
			verdict = "no: " + l.Reason
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.2f\t%.3f\t%.4f\t%s\t\n", l.Calls, l.Result.OK, l.Result.Failed,
			l.Result.Setup.P50, l.Result.RTT.P99, l.Result.LossPct, l.Result.CPUPerCallMinute, verdict)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "last level that held: %d (%s)\n", r.LastHeld, r.StoppedBy)
}

// WriteText prints an idle result.
func (r *IdleResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "idle clients %d: up %d, failed %d (register %v, hold %s)\n", r.Clients, r.Up, r.Failed, r.Register, r.Hold)
	for _, reason := range sortedKeys(r.Failures) {
		fmt.Fprintf(w, "  failure %s: %d\n", reason, r.Failures[reason])
	}
	fmt.Fprintf(w, "gateway rss before %d KiB, at the end of the hold %d KiB: %.2f KiB per client (peak %d KiB: %.2f KiB per client); open fds %d\n",
		r.RSSBefore, r.RSSAfter, r.RSSPerClientKiB, r.RSSPeak, r.RSSPeakPerClientKiB, r.GatewayFDs)
	fmt.Fprintf(w, "gateway pss (shared memory counted once) before %d KiB, at the end of the hold %d KiB: %.2f KiB per client\n",
		r.PSSBefore, r.PSSAfter, r.PSSPerClientKiB)
	fmt.Fprintf(w, "gateway %v: cpu %.2f s, peak rss %d KiB, %d processes\n", r.Gateway.Pids, r.Gateway.CPUSeconds, r.Gateway.PeakRSSKiB, r.Gateway.Processes)
	fmt.Fprintf(w, "generator: cpu %.2f s, peak rss %d KiB\n", r.Generator.CPUSeconds, r.Generator.PeakRSSKiB)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
