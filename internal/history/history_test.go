package history

import (
	"testing"
	"time"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/mediabridge"
)

func TestPoints(t *testing.T) {
	active := 3
	h := New(time.Second, 3*time.Second, func() int { return active })
	t0 := time.Unix(1000, 0)
	call := b2bua.CallInfo{Started: t0}
	h.CallStateChanged(call, b2bua.StateCalling, t0)
	h.CallStateChanged(call, b2bua.StateConfirmed, t0.Add(200*time.Millisecond))
	h.CallStateChanged(call, b2bua.StateCalling, t0)
	h.CallStateChanged(call, b2bua.StateConfirmed, t0.Add(400*time.Millisecond))
	ended := call
	ended.Summary = &b2bua.CallSummary{QoS: mediabridge.QoS{Web: mediabridge.LegQoS{MOS: 4.4}, Core: mediabridge.LegQoS{MOS: 3.8}}}
	h.CallEnded(ended, b2bua.Cause{}, t0)
	h.CallEnded(call, b2bua.Cause{}, t0) // no media: not in the MOS
	h.sample(t0.Add(time.Second))
	p := h.Points()[0]
	if p.CallsActive != 3 || p.Started != 2 || p.Ended != 2 || p.SetupMs != 300 || p.MOS != 3.8 {
		t.Errorf("point %+v", p)
	}
	for i := range 5 {
		h.sample(t0.Add(time.Duration(i+2) * time.Second))
	}
	pts := h.Points()
	if len(pts) != 3 || pts[0].At != t0.Add(4*time.Second) || pts[2].Started != 0 || pts[2].MOS != 0 {
		t.Errorf("kept %d points from %v: %+v", len(pts), pts[0].At, pts[2])
	}
}
