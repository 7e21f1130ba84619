package load

import (
	"sync/atomic"
	"time"
)

// Loss is measured inside a window per call: packets in the first
// warmUp after the answer may meet keys or latching not yet in place, and
// those sent in the last coolDown before the BYE may legitimately not
// come back.
const (
	warmUp   = 500 * time.Millisecond
	coolDown = 200 * time.Millisecond
)

// callProbe is one call's webua.PacketObserver: it counts probes sent and
// echoed inside the call's window and records each echo's round trip.
type callProbe struct {
	rtt      *Histogram
	from, to atomic.Int64 // window in UnixNano; zero until answered
	sent     atomic.Uint64
	echoed   atomic.Uint64
	anyEcho  *atomic.Uint64 // the run's echoed counter, for progress
}

// setWindow is called once the call is answered.
func (p *callProbe) setWindow(answered time.Time, hold time.Duration) {
	p.to.Store(answered.Add(hold - coolDown).UnixNano())
	p.from.Store(answered.Add(warmUp).UnixNano())
}

func (p *callProbe) inWindow(at time.Time) bool {
	from := p.from.Load()
	if from == 0 {
		return false
	}
	ns := at.UnixNano()
	return ns >= from && ns < p.to.Load()
}

// ProbeSent implements webua.PacketObserver.
func (p *callProbe) ProbeSent(at time.Time) {
	if p.inWindow(at) {
		p.sent.Add(1)
	}
}

// ProbeEchoed implements webua.PacketObserver.
func (p *callProbe) ProbeEchoed(sentAt, at time.Time) {
	p.anyEcho.Add(1)
	if p.inWindow(sentAt) {
		p.echoed.Add(1)
		p.rtt.Record(at.Sub(sentAt))
	}
}
