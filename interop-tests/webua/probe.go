package webua

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// PacketObserver sees one call's probe packets: every one sent and every
// one that came back as our own echo. It runs on the call's media
// goroutines once per packet, so it must not block and should not allocate.
type PacketObserver interface {
	// ProbeSent is called after a probe is written; at is the send time it carries.
	ProbeSent(at time.Time)
	// ProbeEchoed is called when a probe comes back: sentAt is the time it
	// carries, at when it was read.
	ProbeEchoed(sentAt, at time.Time)
}

// InviteOption tunes one outgoing call.
type InviteOption func(*inviteOptions)

type inviteOptions struct {
	observer  PacketObserver
	challenge *sip.Response
}

// WithChallenge answers challenge, a 401 or 407 to an earlier INVITE, with
// the UA's digest credentials in the new INVITE (RFC 3261 §22.2), as a
// browser does after its first INVITE was challenged.
func WithChallenge(challenge *sip.Response) InviteOption {
	return func(opts *inviteOptions) { opts.challenge = challenge }
}

// WithPacketObserver reports the call's probe packets to o.
func WithPacketObserver(o PacketObserver) InviteOption {
	return func(opts *inviteOptions) { opts.observer = o }
}

// Timing says when a call passed each step of its setup; a step not
// reached is the zero time.
type Timing struct {
	InviteSent    time.Time // outgoing: the INVITE was written to the WebSocket
	Answered      time.Time // outgoing: the 2xx was read
	ICEConnected  time.Time
	DTLSConnected time.Time // SRTP keys exist: media can flow
	FirstEcho     time.Time // the first of our own probes came back
}

// Timing reports when the call passed each step of its setup.
func (c *Call) Timing() Timing {
	c.mu.Lock()
	t := Timing{InviteSent: c.inviteSent, Answered: c.answered}
	c.mu.Unlock()
	t.ICEConnected = unixNanoTime(c.media.iceAt.Load())
	t.DTLSConnected = unixNanoTime(c.media.dtlsAt.Load())
	t.FirstEcho = unixNanoTime(c.media.firstEcho.Load())
	return t
}

func unixNanoTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
