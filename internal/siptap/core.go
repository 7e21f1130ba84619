package siptap

import (
	"bytes"
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

// tcpReads puts the core's TCP and TLS reads back into messages.
var tcpReads streams

func emitCore(dir Direction, transport, laddr, raddr string, msg []byte) {
	core.mu.RLock()
	defer core.mu.RUnlock()
	if len(core.taps) == 0 {
		return
	}
	now := time.Now()
	msgs := [][]byte{msg}
	if dir == In && transport == "TCP" {
		msgs = tcpReads.feed(laddr+" "+raddr, msg, now)
	}
	for _, m := range msgs {
		if len(bytes.Trim(m, "\r\n")) == 0 {
			continue // keepalive CRLFs
		}
		for t, owner := range core.taps {
			tp, ours := owner(laddr, raddr, transport)
			if !ours {
				continue
			}
			t.Emit(&Message{At: now, Leg: LegCore, Dir: dir, Transport: tp,
				Local: AddrPort(laddr), Remote: AddrPort(raddr), Raw: m})
		}
	}
}
