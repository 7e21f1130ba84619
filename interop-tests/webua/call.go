package webua

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

type direction int

const (
	directionUnknown direction = iota
	directionOutgoing
	directionIncoming
)

func (d direction) String() string {
	switch d {
	case directionOutgoing:
		return "outgoing"
	case directionIncoming:
		return "incoming"
	default:
		return "unknown"
	}
}

type callState int

const (
	stateUnknown   callState = iota
	stateEarly               // INVITE sent or received, no final response yet
	stateConfirmed           // 2xx sent or received
	stateEnded
)

func (s callState) String() string {
	switch s {
	case stateEarly:
		return "early"
	case stateConfirmed:
		return "confirmed"
	case stateEnded:
		return "ended"
	default:
		return "unknown"
	}
}

const provisionalDepth = 16

// Call is one INVITE dialog, sent or received, with its media.
type Call struct {
	ua     *UA
	log    *zap.Logger
	dir    direction
	invite *sip.Request
	media  *media

	provisional chan *sip.Response
	inDialog    chan SessionRequest
	finalSeen   chan struct{} // outgoing: closed when the final response is in
	acked       chan struct{} // incoming: closed when the 2xx is ACKed
	ended       chan struct{}
	finalOnce   sync.Once
	ackOnce     sync.Once
	endOnce     sync.Once

	mu          sync.Mutex
	state       callState
	final       *sip.Response
	endReason   string
	cancelled   bool   // outgoing: we sent CANCEL
	answering   bool   // incoming: Answer under way
	localSDP    string // our last description (offer or answer), for refreshes
	earlyAnswer string // incoming: the answer our 183 carried
	remoteSDP   string // the far end's last description
	want        Direction
	offering    bool             // our re-INVITE or UPDATE offer awaits its answer
	ackPending  bool             // our re-INVITE has its 2xx, our ACK is not out
	reinvite    *pendingReinvite // a re-INVITE we answered 2xx, until its ACK
	seen        []SessionRequest
	dialog      dialog

	inviteSent time.Time // outgoing: INVITE written
	answered   time.Time // outgoing: 2xx read
}

func newCall(u *UA, dir direction, invite *sip.Request) *Call {
	c := &Call{
		ua:          u,
		dir:         dir,
		invite:      invite,
		provisional: make(chan *sip.Response, provisionalDepth),
		finalSeen:   make(chan struct{}),
		acked:       make(chan struct{}),
		ended:       make(chan struct{}),
		inDialog:    make(chan SessionRequest, inDialogDepth),
		state:       stateEarly,
		want:        SendRecv,
	}
	c.log = u.log.With(zap.String("sip_call_id", callIDOf(invite)), zap.Stringer("leg", dir))
	c.media = newMedia(c.log, u.api, func() { c.end("media failed") })
	return c
}

func (c *Call) callID() string { return c.dialog.callID }

// Request is the INVITE, sent or received.
func (c *Call) Request() *sip.Request { return c.invite }

// Provisional delivers the 1xx responses of an outgoing call (drops when full).
func (c *Call) Provisional() <-chan *sip.Response { return c.provisional }

// Ended is closed when the call is over: BYE or CANCEL received, hangup,
// rejection, failure or Close.
func (c *Call) Ended() <-chan struct{} { return c.ended }

// EndReason says why the call ended: "bye", "cancel", "hangup", "cancelled",
// "rejected 486", "media failed", "ws closed", "closed"; empty while it lasts.
func (c *Call) EndReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endReason
}

// Media reports the call's RTP counters.
func (c *Call) Media() MediaStats { return c.media.stats() }

// ICEConnected is closed when ICE reaches connected.
func (c *Call) ICEConnected() <-chan struct{} { return c.media.iceConnected }

// HangUp ends the call from our side: BYE once confirmed (waiting for its
// response), CANCEL while an outgoing call is early, 486 while an incoming
// one is.
func (c *Call) HangUp(ctx context.Context) error {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	switch {
	case state == stateEarly && c.dir == directionOutgoing:
		return c.Cancel(ctx)
	case state == stateEarly && c.dir == directionIncoming:
		return c.Reject(ctx, sip.StatusBusyHere)
	case state != stateConfirmed:
		return fmt.Errorf("hang up: %w: %s", errBadState, state)
	}
	bye := c.newInDialogRequest(sip.BYE)
	c.end("hangup")
	res, err := c.ua.roundTrip(ctx, bye)
	if err != nil {
		return fmt.Errorf("hang up: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("hang up: %w", &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	return nil
}

// end marks the call over once, forgets it and tears its media down in the
// background (pion must not be closed from its own callbacks).
func (c *Call) end(reason string) {
	first := false
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.state = stateEnded
		c.endReason = reason
		c.mu.Unlock()
		close(c.ended)
		first = true
	})
	if !first {
		return
	}
	c.log.Debug("call ended", zap.String("reason", reason))
	c.ua.forgetCall(c)
	c.ua.goTeardown(c.media.close)
}

// SendDTMF sends one digit as SIP INFO (application/dtmf-relay, as JsSIP
// does) in the confirmed dialog and returns the final response.
func (c *Call) SendDTMF(ctx context.Context, digit string) (*sip.Response, error) {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if state != stateConfirmed {
		return nil, fmt.Errorf("send dtmf: %w: %s", errBadState, state)
	}
	return c.SendInfo(ctx, "application/dtmf-relay", "Signal="+digit+"\r\nDuration=100\r\n")
}

// SendInfo sends an INFO in the call's dialog, early (after a 18x with a
// To tag, as JsSIP allows) or confirmed, and returns its final response.
func (c *Call) SendInfo(ctx context.Context, contentType, body string) (*sip.Response, error) {
	c.mu.Lock()
	state, tag := c.state, c.dialog.remoteTag
	c.mu.Unlock()
	if state == stateEnded || tag == "" {
		return nil, fmt.Errorf("send info: %w: %s", errBadState, state)
	}
	info := c.newInDialogRequest(sip.INFO)
	info.AppendHeader(sip.NewHeader("Content-Type", contentType))
	info.SetBody([]byte(body))
	res, err := c.ua.roundTrip(ctx, info)
	if err != nil {
		return nil, fmt.Errorf("send info: %w", err)
	}
	return res, nil
}
