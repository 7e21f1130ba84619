package b2bua

import (
	"fmt"
	"time"

	"github.com/imsgate/imsgate/mediabridge"
)

// Side names a leg by where it faces, not by direction.
type Side int

const (
	SideUnknown Side = iota
	SideWeb          // the browser, over a WebSocket flow
	SideCore         // the IMS core or PBX, over sipgo
	SideGateway      // the gateway itself (timeouts, shutdown)
)

func (s Side) String() string {
	switch s {
	case SideWeb:
		return "web"
	case SideCore:
		return "core"
	case SideGateway:
		return "gateway"
	}
	return "unknown"
}

// EndReason is why a call ended, as a closed set that logs, metrics and
// CDRs can count on.
type EndReason int

const (
	EndUnknown          EndReason = iota
	EndHangup                     // BYE from Cause.By
	EndCanceled                   // CANCEL from Cause.By before the answer
	EndRejected                   // a final error response from Cause.By
	EndNoAnswer                   // upstream.invite_timeout ran out
	EndTimeout                    // a transaction saw no final response within 64·T1
	EndAckTimeout                 // our 2xx was never acknowledged (RFC 3261 13.3.1.4)
	EndMediaFailed                // an offer or answer could not be bridged
	EndFlowClosed                 // the browser's WebSocket closed
	EndTransportError             // a message could not be sent
	EndShutdown                   // the gateway stopped
	EndSessionExpired             // the core's session timer ran out unrefreshed (RFC 4028 §10)
	EndReconnectTimeout           // the browser did not come back within calls.reconnect_grace
	EndMediaTimeout               // the browser's ICE consent checks stopped (RFC 7675)
	EndTokenExpired               // the browser's token ran out, and its grace (auth.expiry_grace)
	EndChallenged                 // a 401 or 407 from Cause.By relayed: the caller retries with credentials
)

func (r EndReason) String() string {
	switch r {
	case EndHangup:
		return "hangup"
	case EndCanceled:
		return "canceled"
	case EndRejected:
		return "rejected"
	case EndNoAnswer:
		return "no_answer"
	case EndTimeout:
		return "timeout"
	case EndAckTimeout:
		return "ack_timeout"
	case EndMediaFailed:
		return "media_failed"
	case EndFlowClosed:
		return "flow_closed"
	case EndTransportError:
		return "transport_error"
	case EndShutdown:
		return "shutdown"
	case EndSessionExpired:
		return "session_expired"
	case EndReconnectTimeout:
		return "reconnect_timeout"
	case EndMediaTimeout:
		return "media_timeout"
	case EndTokenExpired:
		return "token_expired"
	case EndChallenged:
		return "challenged"
	}
	return "unknown"
}

// Cause is the end of a call: what ended it, which side, and the SIP status
// that went with it (0 when none did).
type Cause struct {
	Reason EndReason
	By     Side
	Status int
	Err    error
}

func (c Cause) String() string {
	s := c.Reason.String() + " by " + c.By.String()
	if c.Status != 0 {
		s += fmt.Sprintf(" (%d)", c.Status)
	}
	if c.Err != nil {
		s += ": " + c.Err.Error()
	}
	return s
}

// CallState is where a call stands.
type CallState int

const (
	StateUnknown   CallState = iota
	StateCalling             // the dialog-forming INVITE is out
	StateEarly               // a provisional response came back
	StateConfirmed           // answered and acknowledged on both legs
	StateEnded
)

func (s CallState) String() string {
	switch s {
	case StateCalling:
		return "calling"
	case StateEarly:
		return "early"
	case StateConfirmed:
		return "confirmed"
	case StateEnded:
		return "ended"
	}
	return "unknown"
}

// CallInfo identifies a call to an observer.
type CallInfo struct {
	ID         string
	Origin     Side // the leg that sent the first INVITE
	WebCallID  string
	CoreCallID string
	Flow       string
	// Caller and Callee are the origin INVITE's From URI and Request-URI.
	Caller, Callee string
	Started        time.Time // the first INVITE
	Ringing        time.Time // the first provisional with a To tag; zero before
	Answered       time.Time // the answer; zero before
	// Summary is what the call carried; set at its end only (CallEnded).
	Summary *CallSummary
}

// CallSummary is a call's media and digits, told at its end.
type CallSummary struct {
	Codec     string // the audio codec both legs agreed on, as name/clock; "" when none was
	MediaPath string // the browser's media path: udp, ice-tcp, turn-udp, turn-tcp, turn-tls; "" before ICE
	// WebToCore and CoreToWeb are the RTP relayed each way.
	WebToCore, CoreToWeb Traffic
	DTMFDigits           int // digits relayed either way
	// QoS is each leg's quality as last measured and reported (RTCP); its
	// legs are zero when no media flowed.
	QoS mediabridge.QoS
}

// Traffic is packets and their bytes.
type Traffic struct{ Packets, Bytes uint64 }

// Observer is told about every call's state changes and its end; metrics,
// CDRs and the call timeline hang off it. It is called on the call's
// goroutine and must not block.
type Observer interface {
	CallStateChanged(call CallInfo, state CallState, at time.Time)
	CallEnded(call CallInfo, cause Cause, at time.Time)
}

// CallNote is something that happened to a call besides its states: its
// browser media coming up or failing, its browser's WebSocket dropping and
// coming back.
type CallNote struct {
	Kind string // "media" or "ws"
	Text string
}

// NoteObserver is an Observer that also hears each call's notes (the call
// timeline). Called on the call's goroutine; must not block.
type NoteObserver interface {
	CallNoted(call CallInfo, note CallNote, at time.Time)
}

// observers tells each of several observers in turn.
type observers []Observer

func (os observers) CallNoted(call CallInfo, note CallNote, at time.Time) {
	for _, o := range os {
		if n, ok := o.(NoteObserver); ok {
			n.CallNoted(call, note, at)
		}
	}
}

func (os observers) CallStateChanged(call CallInfo, state CallState, at time.Time) {
	for _, o := range os {
		o.CallStateChanged(call, state, at)
	}
}

func (os observers) CallEnded(call CallInfo, cause Cause, at time.Time) {
	for _, o := range os {
		o.CallEnded(call, cause, at)
	}
}

type nopObserver struct{}

func (nopObserver) CallStateChanged(CallInfo, CallState, time.Time) {}
func (nopObserver) CallEnded(CallInfo, Cause, time.Time)            {}
