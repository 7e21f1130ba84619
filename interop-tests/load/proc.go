package load

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// procStat is what one /proc/PID/stat line tells us.
type procStat struct {
	ppid      int
	cpuTicks  uint64 // utime + stime (fields 14, 15)
	startTime uint64 // field 22: tells a reused pid from the old process
}

// procKey names one process for its whole life, even if its pid is reused.
type procKey struct {
	pid       int
	startTime uint64
}

// readProcTable reads the stat line of every process on the machine: the
// only way to find descendants (Kamailio and rtpengine fork workers).
func readProcTable() (map[int]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	table := make(map[int]procStat, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone since the listing
		}
		table[pid] = st
	}
	return table, nil
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return parseStat(data)
}

// parseStat reads proc(5) stat: "pid (comm) state ppid ...". comm may hold
// spaces and parentheses, so fields are counted after the last ')'.
func parseStat(data []byte) (procStat, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("%w: stat line without comm", ErrBadFlag)
	}
	// fields[0] is field 3 (state).
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("%w: stat line with %d fields", ErrBadFlag, len(fields)+2)
	}
	num := func(field int) (uint64, error) { return strconv.ParseUint(fields[field-3], 10, 64) }
	ppid, err := num(4)
	if err != nil {
		return procStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	utime, err := num(14)
	if err != nil {
		return procStat{}, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := num(15)
	if err != nil {
		return procStat{}, fmt.Errorf("stat stime: %w", err)
	}
	start, err := num(22)
	if err != nil {
		return procStat{}, fmt.Errorf("stat starttime: %w", err)
	}
	return procStat{ppid: int(ppid), cpuTicks: utime + stime, startTime: start}, nil
}

// liveRoots returns the roots that exist in table.
func liveRoots(table map[int]procStat, roots []int) []int {
	var out []int
	for _, r := range roots {
		if _, ok := table[r]; ok {
			out = append(out, r)
		}
	}
	return out
}

// descendants returns roots (those alive) and every process below them.
func descendants(table map[int]procStat, roots []int) []int {
	children := make(map[int][]int)
	for pid, st := range table {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	seen := make(map[int]bool)
	var out []int
	queue := make([]int, 0, len(roots))
	for _, r := range roots {
		if _, ok := table[r]; ok {
			queue = append(queue, r)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

// memory reads VmHWM and VmRSS (KiB) from /proc/PID/status.
func memory(pid int) (hwm, rss int64) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss
}

// pss reads the proportional set size (KiB) from /proc/PID/smaps_rollup:
// memory shared by a forking server's processes counted once in all, where
// summing VmRSS counts it once per process.
func pss(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// openFDs counts /proc/PID/fd entries.
func openFDs(pid int) int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

// clockTicks is the kernel's USER_HZ, from the aux vector (AT_CLKTCK) the
// kernel gave this process; 100 when unreadable, as on every Linux port.
var clockTicks = sync.OnceValue(func() uint64 {
	const atClkTck = 17
	data, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for off := 0; off+16 <= len(data); off += 16 {
		key := binary.NativeEndian.Uint64(data[off:])
		val := binary.NativeEndian.Uint64(data[off+8:])
		if key == atClkTck && val > 0 {
			return val
		}
	}
	return 100
})

// Tracker follows the CPU and memory of some root pids and all their
// descendants. CPU of a process that dies between two samples is lost
// since its last sample, so sample often (the generator does each second).
type Tracker struct {
	roots    []int
	selfOnly bool // the roots alone, not their descendants

	mu        sync.Mutex
	first     map[procKey]uint64 // ticks when first seen; 0 for one born after the start
	last      map[procKey]uint64
	alive     []int
	hwm, rss  int64 // sums at the last sample
	pss       int64 // PSS sum at the last sample
	peakRSS   int64 // largest rss sum seen
	peakPSS   int64
	peakHWM   int64
	sampled   bool
	lastTable map[int]procStat
}

// NewTracker checks the roots exist and takes the first sample.
func NewTracker(roots []int) (*Tracker, error) {
	for _, pid := range roots {
		if _, err := readStat(pid); err != nil {
			return nil, fmt.Errorf("%w: pid %d", ErrNoProcess, pid)
		}
	}
	t := &Tracker{roots: roots, first: make(map[procKey]uint64), last: make(map[procKey]uint64)}
	if err := t.Sample(); err != nil {
		return nil, err
	}
	return t, nil
}

// newSelfTracker follows this process alone: when a test starts the
// gateway as its child, the gateway must not count as the generator.
func newSelfTracker() (*Tracker, error) {
	t := &Tracker{roots: []int{os.Getpid()}, selfOnly: true, first: make(map[procKey]uint64), last: make(map[procKey]uint64)}
	if err := t.Sample(); err != nil {
		return nil, err
	}
	return t, nil
}

// Sample reads /proc once for the whole group.
func (t *Tracker) Sample() error {
	if t == nil || len(t.roots) == 0 {
		return nil
	}
	table, err := readProcTable()
	if err != nil {
		return err
	}
	t.sampleFrom(table)
	return nil
}

func (t *Tracker) sampleFrom(table map[int]procStat) {
	pids := descendants(table, t.roots)
	if t.selfOnly {
		pids = liveRoots(table, t.roots)
	}
	var hwm, rss, ps int64
	for _, pid := range pids {
		h, r := memory(pid)
		hwm += h
		rss += r
		ps += pss(pid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pid := range pids {
		st := table[pid]
		k := procKey{pid, st.startTime}
		if _, ok := t.first[k]; !ok {
			if t.sampled {
				t.first[k] = 0 // born during the run: all its CPU is ours
			} else {
				t.first[k] = st.cpuTicks
			}
		}
		t.last[k] = st.cpuTicks
	}
	t.sampled = true
	t.alive = pids
	t.hwm, t.rss, t.pss = hwm, rss, ps
	t.peakRSS = max(t.peakRSS, rss)
	t.peakPSS = max(t.peakPSS, ps)
	t.peakHWM = max(t.peakHWM, hwm)
	t.lastTable = table
}

// CPUSeconds is the CPU the group used since the tracker started.
func (t *Tracker) CPUSeconds() float64 {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var ticks uint64
	for k, last := range t.last {
		ticks += last - min(last, t.first[k])
	}
	return float64(ticks) / float64(clockTicks())
}

// PSS is the group's PSS sum at the last sample, in KiB.
func (t *Tracker) PSS() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pss
}

// RSS is the group's VmRSS sum at the last sample, in KiB.
func (t *Tracker) RSS() int64 {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rss
}

// PeakRSS is the largest VmRSS sum seen at any sample, in KiB.
func (t *Tracker) PeakRSS() int64 {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peakRSS
}

// ResetPeakRSS starts a new peak from the last sample.
func (t *Tracker) ResetPeakRSS() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peakRSS = t.rss
}

// OpenFDs counts the open files of the live processes.
func (t *Tracker) OpenFDs() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	pids := append([]int(nil), t.alive...)
	t.mu.Unlock()
	n := 0
	for _, pid := range pids {
		n += openFDs(pid)
	}
	return n
}

// Usage summarises the group for a report.
func (t *Tracker) Usage() ProcUsage {
	if t == nil {
		return ProcUsage{}
	}
	cpu := t.CPUSeconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	return ProcUsage{
		Pids:       append([]int(nil), t.roots...),
		Processes:  len(t.alive),
		CPUSeconds: cpu,
		PeakRSSKiB: t.peakHWM,
		RSSKiB:     t.rss,
		PSSKiB:     t.pss,
		PeakPSSKiB: t.peakPSS,
	}
}

// Trackers samples several groups from one /proc scan.
type Trackers []*Tracker

// Sample scans /proc once and updates every tracker.
func (ts Trackers) Sample() error {
	var live []*Tracker
	for _, t := range ts {
		if t != nil && len(t.roots) > 0 {
			live = append(live, t)
		}
	}
	if len(live) == 0 {
		return nil
	}
	table, err := readProcTable()
	if err != nil {
		return err
	}
	for _, t := range live {
		t.sampleFrom(table)
	}
	return nil
}
