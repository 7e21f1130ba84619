package democore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Echo call states, as reported in EchoCall.State.
const (
	stateRinging  = "ringing"
	stateAnswered = "answered"
	stateEnded    = "ended"
	stateCanceled = "canceled"
	stateFailed   = "failed"
)

// Users the echo target answers for.
const (
	userEcho = "echo" // answers and echoes RTP
	userRing = "ring" // rings forever, for CANCEL tests
	userBusy = "busy" // answers 486
)

// EchoCall is a snapshot of one INVITE the echo target received.
type EchoCall struct {
	CallID string
	From   string
	To     string
	// State is "ringing", "answered", "ended", "canceled" or "failed".
	State      string
	PacketsIn  uint64
	PacketsOut uint64
	// Codec is the answered encoding name, e.g. "PCMU".
	Codec string
	// EndedBy is "remote" or "core" once the call has ended.
	EndedBy string
	// DTMF is the digits received, in SIP INFO (dtmf-relay or dtmf bodies)
	// or as RFC 4733 telephone-events.
	DTMF string
}

type echoCall struct {
	core   *Core
	log    *zap.Logger
	callID string
	from   string
	to     string
	dlg    *dialog
	media  *echoMedia // nil for busy
	codec  string

	ackOnce sync.Once
	acked   chan struct{}

	mu      sync.Mutex
	state   string
	endedBy string
	dtmf    string
	started time.Time
}

// EchoCalls returns a snapshot of every call the echo target received, in
// arrival order.
func (c *Core) EchoCalls() []EchoCall {
	c.mu.Lock()
	calls := append([]*echoCall(nil), c.echoOrder...)
	c.mu.Unlock()
	out := make([]EchoCall, 0, len(calls))
	for _, e := range calls {
		out = append(out, e.snapshot())
	}
	return out
}

func (e *echoCall) snapshot() EchoCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := EchoCall{CallID: e.callID, From: e.from, To: e.to, State: e.state, Codec: e.codec, EndedBy: e.endedBy, DTMF: e.dtmf}
	if e.media != nil {
		s.PacketsIn, s.PacketsOut = e.media.in.Load(), e.media.out.Load()
	}
	return s
}

func (e *echoCall) currentState() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// setAnswered moves ringing to answered; false if the call already ended.
func (e *echoCall) setAnswered() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateRinging {
		return false
	}
	e.state = stateAnswered
	return true
}

// finish moves the call to a terminal state once and releases its media.
// On Close, a ringing call becomes "failed" and an answered one "ended".
func (e *echoCall) finish(state, endedBy string) bool {
	e.mu.Lock()
	switch e.state {
	case stateEnded, stateCanceled, stateFailed:
		e.mu.Unlock()
		return false
	case stateRinging:
		if state == stateEnded {
			state = stateFailed
		}
	}
	e.state = state
	if state == stateEnded {
		e.endedBy = endedBy
	}
	e.mu.Unlock()
	if e.media != nil {
		e.media.close()
	}
	s := e.snapshot()
	e.log.Info("echo call end", zap.String("state", s.State), zap.String("reason", endedBy),
		zap.Uint64("packets_in", s.PacketsIn), zap.Uint64("packets_out", s.PacketsOut), zap.Duration("dur", time.Since(e.started)))
	return true
}

func (c *Core) addEcho(e *echoCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.echoOrder = append(c.echoOrder, e)
	c.echoByID[e.callID] = e
}

func (c *Core) findEcho(callID string) *echoCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.echoByID[callID]
}

// onInvite routes an initial INVITE by Request-URI user.
func (c *Core) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	to := req.To()
	if to == nil || req.From() == nil || req.CallID() == nil || req.CSeq() == nil {
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	if to.Params.Has("tag") {
		c.onReInvite(req, tx)
		return
	}
	// Our To tag goes on the request before any response so every response,
	// including the 487 sipgo sends on CANCEL, carries the same tag
	// (RFC 3261 §8.2.6.2).
	tag := sip.GenerateTagN(16)
	to.Params.Add("tag", tag)

	switch user := req.Recipient.User; user {
	case userEcho, userRing:
		c.serveEcho(req, tx, tag, user == userRing)
	case userBusy:
		c.recordBusy(req)
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
	default:
		if _, known := c.opts.Users[user]; known || c.userRegistered(user) {
			c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil))
			return
		}
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusNotFound, "Not Found", nil))
	}
}

func (c *Core) recordBusy(req *sip.Request) {
	e := &echoCall{
		core: c, log: c.log, callID: callIDOf(req), from: req.From().Address.String(), to: req.To().Address.String(),
		acked: make(chan struct{}), state: stateFailed, started: time.Now(),
	}
	c.addEcho(e)
}

// serveEcho answers (or, for ring, only rings) an INVITE and echoes RTP.
func (c *Core) serveEcho(req *sip.Request, tx sip.ServerTransaction, tag string, ringOnly bool) {
	callID := callIDOf(req)
	log := c.log.With(zap.String("sip_call_id", callID), zap.String("leg", "echo"))
	c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil))

	dlg, err := dialogAsUAS(req, tag)
	if err != nil {
		log.Warn("echo invite rejected", zap.Error(err))
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	offer, err := parseSDP(req.Body())
	var choice answerChoice
	if err == nil && offer.audio == nil {
		err = fmt.Errorf("echo offer: %w: no RTP/AVP audio", ErrBadSDP)
	}
	if err == nil {
		choice, err = chooseAnswer(offer.audio)
	}
	if err != nil {
		log.Warn("echo offer rejected", zap.Error(err))
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		return
	}
	media, err := newEchoMedia(c.mediaIP)
	if err != nil {
		log.Error("echo media", zap.Error(err))
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return
	}
	e := &echoCall{
		core: c, log: log, callID: callID, from: req.From().Address.String(), to: req.To().Address.String(),
		dlg: dlg, media: media, codec: choice.codec.rtpmapName(), acked: make(chan struct{}),
		state: stateRinging, started: time.Now(),
	}
	if choice.event != nil {
		media.events = int(choice.event.pt)
		media.onDigit = e.addDigit
	}
	c.addEcho(e)
	log.Info("echo call start", zap.String("from", e.from), zap.String("to", e.to), zap.String("codec", e.codec))

	canceled := make(chan struct{})
	var cancelOnce sync.Once
	tx.OnCancel(func(*sip.Request) { cancelOnce.Do(func() { close(canceled) }) })

	contact := &sip.ContactHeader{Address: c.contactURI(req.Transport())}
	ringing := sip.NewResponseFromRequest(req, sip.StatusRinging, "Ringing", nil)
	ringing.AppendHeader(contact)
	c.respond(tx, ringing)

	var answerAfter <-chan time.Time
	if !ringOnly {
		timer := time.NewTimer(c.opts.AnswerDelay)
		defer timer.Stop()
		answerAfter = timer.C
	}
	select {
	case <-answerAfter:
	case <-canceled:
		// sipgo has already answered the CANCEL with 200 and the INVITE with 487.
		e.finish(stateCanceled, "remote")
		return
	case <-tx.Done():
		e.finish(stateFailed, "remote")
		return
	case <-c.done:
		e.finish(stateFailed, "core")
		return
	}

	body := buildAnswer(offer, choice, c.mediaIP, media.port(), newSessionID())
	ok := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	ok.AppendHeader(contact.Clone())
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ok.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	if !e.setAnswered() {
		return
	}
	media.start()
	c.respond(tx, ok)
	reliable := req.Transport() != "UDP"
	c.goTracked(func() { c.awaitAck(e, ok, reliable) })
}

// awaitAck retransmits the 2xx over UDP until the ACK arrives (RFC 3261
// §13.3.1.4) and ends the call with BYE if it never does.
func (c *Core) awaitAck(e *echoCall, ok *sip.Response, reliable bool) {
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	// RFC 3261 §13.3.1.4: without an ACK after 64*T1 the UAS sends BYE.
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case <-e.acked:
			return
		case <-c.done:
			return
		case <-retransmit.C:
			if e.currentState() != stateAnswered {
				return
			}
			if !reliable {
				if err := c.retransmit(ok); err != nil {
					e.log.Debug("retransmit 2xx", zap.Error(err))
				}
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-giveUp.C:
			e.log.Warn("no ack for 2xx", zap.String("reason", "ack timeout"))
			if e.finish(stateEnded, "core") {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := c.bye(ctx, e.dlg); err != nil {
					e.log.Debug("bye after ack timeout", zap.Error(err))
				}
				cancel()
			}
			return
		}
	}
}

// onReInvite answers a target refresh or hold on an answered echo call with
// a fresh answer on the same port; anything else is 481.
func (c *Core) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	e := c.findEcho(callIDOf(req))
	if e == nil || e.dlg == nil || !e.dlg.matches(req) || e.currentState() != stateAnswered {
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	offer, err := parseSDP(req.Body())
	var choice answerChoice
	if err == nil && offer.audio == nil {
		err = fmt.Errorf("echo re-offer: %w: no RTP/AVP audio", ErrBadSDP)
	}
	if err == nil {
		choice, err = chooseAnswer(offer.audio)
	}
	if err != nil {
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		return
	}
	body := buildAnswer(offer, choice, c.mediaIP, e.media.port(), newSessionID())
	ok := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	ok.AppendHeader(&sip.ContactHeader{Address: c.contactURI(req.Transport())})
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.respond(tx, ok)
}

// onAck takes the ACK for an echo 2xx (a request of its own, RFC 3261 §17.1.1.3).
func (c *Core) onAck(req *sip.Request, _ sip.ServerTransaction) {
	e := c.findEcho(callIDOf(req))
	if e == nil || e.dlg == nil || !e.dlg.matches(req) {
		return
	}
	e.ackOnce.Do(func() { close(e.acked) })
}

// onBye ends an echo call or an outgoing call.
func (c *Core) onBye(req *sip.Request, tx sip.ServerTransaction) {
	callID := callIDOf(req)
	if e := c.findEcho(callID); e != nil && e.dlg != nil && e.dlg.matches(req) {
		e.finish(stateEnded, "remote")
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		return
	}
	if o := c.findOutCall(callID); o != nil && o.takeBye(req) {
		// takeBye has already closed Ended, so a waiter sees it before the 200.
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		return
	}
	c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

// onInfo takes in-dialog INFO: DTMF for an echo call is recorded; any INFO
// in a known dialog gets 200 (RFC 6086), others 481.
func (c *Core) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	callID := callIDOf(req)
	if e := c.findEcho(callID); e != nil && e.dlg != nil && e.dlg.matches(req) {
		if digit := dtmfDigit(req); digit != "" {
			e.addDigit(digit)
		}
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		return
	}
	if o := c.findOutCall(callID); o != nil {
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		return
	}
	c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

// addDigit records a key pressed, as INFO or RFC 4733.
func (e *echoCall) addDigit(d string) {
	e.mu.Lock()
	e.dtmf += d
	e.mu.Unlock()
	e.log.Info("echo call dtmf", zap.String("digit", d))
}

// dtmfDigit reads the digit of an application/dtmf-relay ("Signal=5") or
// application/dtmf ("5") INFO body.
func dtmfDigit(req *sip.Request) string {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(h.Value())
	}
	body := strings.TrimSpace(string(req.Body()))
	switch {
	case strings.HasPrefix(ct, "application/dtmf-relay"):
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Signal="); ok {
				return strings.TrimSpace(v)
			}
		}
	case strings.HasPrefix(ct, "application/dtmf"):
		return body
	}
	return ""
}

// onCancel sees only CANCELs that match no INVITE transaction (sipgo
// handles the others): 481 (RFC 3261 §9.2).
func (c *Core) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

// HangUpEcho sends BYE for an answered echo call.
func (c *Core) HangUpEcho(ctx context.Context, callID string) error {
	e := c.findEcho(callID)
	if e == nil || e.dlg == nil {
		return fmt.Errorf("hang up echo %s: %w", callID, ErrUnknownCall)
	}
	switch e.currentState() {
	case stateRinging:
		return fmt.Errorf("hang up echo %s: %w", callID, ErrNotAnswered)
	case stateAnswered:
	default:
		return fmt.Errorf("hang up echo %s: %w", callID, ErrCallEnded)
	}
	if !e.finish(stateEnded, "core") {
		return fmt.Errorf("hang up echo %s: %w", callID, ErrCallEnded)
	}
	if err := c.bye(ctx, e.dlg); err != nil {
		return fmt.Errorf("hang up echo: %w", err)
	}
	return nil
}

// retransmit resends a 2xx outside its transaction unless closing.
func (c *Core) retransmit(res *sip.Response) error {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.sendClosed {
		return ErrClosed
	}
	return c.server.WriteResponse(res)
}
