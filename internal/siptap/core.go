package siptap

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sipgo traces messages through one hook for the whole process
// (sip.SIPDebugTracer, read by its transports without synchronisation), so
// the hook is set once, before any transport runs, and hands each message
// to the taps attached: a process normally holds one gateway, tests hold
// several beside SIP peers of their own.
func init() {
	sip.SIPDebugTracer(tracer{})
	sip.SIPDebug = true
}

// CoreOwner tells which of sipgo's messages are a gateway's core leg, by
// the connection's local and remote addresses; transport corrects sipgo's
// name for it (sipgo names TLS "TCP").
type CoreOwner func(local, remote string, sipgoTransport string) (transport string, ours bool)

var core struct {
	mu   sync.RWMutex
	taps map[*Tap]CoreOwner
}

// AttachCore gives t the core-leg messages owner claims, until detach.
func AttachCore(t *Tap, owner CoreOwner) (detach func()) {
	if t == nil {
		return func() {}
	}
	core.mu.Lock()
	if core.taps == nil {
		core.taps = map[*Tap]CoreOwner{}
	}
	core.taps[t] = owner
	core.mu.Unlock()
	return func() {
		core.mu.Lock()
		delete(core.taps, t)
		core.mu.Unlock()
	}
}

type tracer struct{}

func (tracer) SIPTraceRead(transport, laddr, raddr string, msg []byte) {
	emitCore(In, transport, laddr, raddr, msg)
}

func (tracer) SIPTraceWrite(transport, laddr, raddr string, msg []byte) {
	emitCore(Out, transport, laddr, raddr, msg)
}

func emitCore(dir Direction, transport, laddr, raddr string, msg []byte) {
	core.mu.RLock()
	defer core.mu.RUnlock()
	if len(core.taps) == 0 || len(msg) < 4 { // keepalive CRLFs
		return
	}
	for t, owner := range core.taps {
		tp, ours := owner(laddr, raddr, transport)
		if !ours {
			continue
		}
		t.Emit(&Message{At: time.Now(), Leg: LegCore, Dir: dir, Transport: tp,
			Local: AddrPort(laddr), Remote: AddrPort(raddr), Raw: msg})
	}
}
