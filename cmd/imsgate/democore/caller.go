package democore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// cancelTimeout bounds a CANCEL or BYE the core sends on its own.
const cancelTimeout = 5 * time.Second

// OutCall is a call the core places to a registered AoR, forked to every
// Contact of the AoR. All branches share Call-ID and From tag, as a forking
// proxy's would (RFC 3261 §16.6); each has its own Via branch.
type OutCall struct {
	core   *Core
	log    *zap.Logger
	callID string
	media  *streamMedia
	start  time.Time

	decided chan struct{} // closed when the final outcome is known
	ended   chan struct{} // closed when the dialog is over
	endOnce sync.Once

	mu              sync.Mutex
	branches        []*branch
	pending         int // branches without a final response
	winner          *branch
	dlg             *dialog
	cancelRequested bool
	isDecided       bool
	status          int
	err             error
	failures        []failure
}

// branch is one forked INVITE client transaction.
type branch struct {
	invite      *sip.Request
	tx          sip.ClientTransaction
	provisional bool
	cancelSent  bool
	final       bool
}

// Call places a call from "from" (a user or SIP URI) to a registered AoR and
// returns once the INVITEs are sent.
func (c *Core) Call(ctx context.Context, from, toAoR string) (*OutCall, error) {
	if c.isClosed() {
		return nil, fmt.Errorf("call %s: %w", toAoR, ErrClosed)
	}
	toURI, err := parseAoR(toAoR)
	if err != nil {
		return nil, fmt.Errorf("call: %w", err)
	}
	fromURI, err := c.fromURI(from)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", toAoR, err)
	}
	c.mu.Lock()
	var targets []sip.Uri
	for _, b := range c.liveBindingsLocked(aorKey(toURI), time.Now()) {
		targets = append(targets, *b.contact.Clone())
	}
	c.mu.Unlock()
	if len(targets) == 0 {
		return nil, fmt.Errorf("call %s: %w", toAoR, ErrNotRegistered)
	}
	media, err := newStreamMedia(c.mediaIP)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", toAoR, err)
	}
	offer := buildOffer(c.mediaIP, media.port(), newSessionID())
	o := &OutCall{
		core:    c,
		callID:  sip.GenerateTagN(24) + "@democore",
		media:   media,
		start:   time.Now(),
		decided: make(chan struct{}),
		ended:   make(chan struct{}),
	}
	o.log = c.log.With(zap.String("sip_call_id", o.callID), zap.String("leg", "caller"), zap.String("aor", aorKey(toURI)))
	fromTag := sip.GenerateTagN(16)
	seq := randUint32()&0x7FFF + 1

	c.mu.Lock()
	c.outCalls[o.callID] = o
	c.mu.Unlock()

	for _, target := range targets {
		inv := c.newInvite(target, fromURI, fromTag, toURI, o.callID, seq, offer)
		tx, err := c.startTransaction(ctx, inv)
		if err != nil {
			o.log.Warn("send invite", zap.String("remote_addr", target.String()), zap.Error(err))
			continue
		}
		o.branches = append(o.branches, &branch{invite: inv, tx: tx})
	}
	if len(o.branches) == 0 {
		o.finishEnded()
		return nil, fmt.Errorf("call %s: %w", toAoR, &StatusError{Status: sip.StatusServiceUnavailable, Reason: "no branch could be sent"})
	}
	o.pending = len(o.branches)
	o.log.Info("call start", zap.String("from", fromURI.String()), zap.Int("branches", len(o.branches)))
	for _, b := range o.branches {
		if !c.goTracked(func() { o.runBranch(b) }) {
			b.tx.Terminate()
		}
	}
	return o, nil
}

// fromURI accepts "bob" (taken in the core's domain) or a SIP URI.
func (c *Core) fromURI(from string) (sip.Uri, error) {
	if from == "" {
		from = "democore"
	}
	if !strings.Contains(from, ":") {
		return sip.Uri{Scheme: "sip", User: from, Host: c.opts.Domain}, nil
	}
	return parseAoR(from)
}

func (c *Core) newInvite(target, fromURI sip.Uri, fromTag string, toURI sip.Uri, callID string, seq uint32, offer []byte) *sip.Request {
	inv := sip.NewRequest(sip.INVITE, target)
	maxFwd := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&maxFwd)
	inv.AppendHeader(&sip.FromHeader{Address: fromURI, Params: sip.HeaderParams{{K: "tag", V: fromTag}}})
	inv.AppendHeader(&sip.ToHeader{Address: toURI})
	cid := sip.CallIDHeader(callID)
	inv.AppendHeader(&cid)
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.INVITE})
	inv.AppendHeader(&sip.ContactHeader{Address: c.contactURI(uriTransport(target))})
	inv.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(offer)
	return inv
}

// runBranch reads one branch's responses until its final response.
func (o *OutCall) runBranch(b *branch) {
	for {
		select {
		case res := <-b.tx.Responses():
			if o.onResponse(b, res) {
				return
			}
		case <-b.tx.Done():
			status := sip.StatusRequestTimeout
			if err := b.tx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTimeout) {
				status = sip.StatusServiceUnavailable
			}
			o.onFailure(b, status, "no final response")
			return
		case <-o.core.done:
			return
		}
	}
}

// onResponse handles one response on b; true once b has its final response.
func (o *OutCall) onResponse(b *branch, res *sip.Response) bool {
	o.log.Debug("sip response", zap.Int("status", res.StatusCode), zap.String("cseq", cseqOf(res)))
	switch {
	case res.IsProvisional():
		o.mu.Lock()
		b.provisional = true
		sendCancel := (o.cancelRequested || o.winner != nil) && !b.cancelSent && !b.final
		if sendCancel {
			b.cancelSent = true
		}
		o.mu.Unlock()
		if sendCancel {
			o.cancelAsync(b)
		}
		return false
	case res.IsSuccess():
		o.onSuccess(b, res)
		return true
	default:
		o.onFailure(b, res.StatusCode, res.Reason)
		return true
	}
}

// onSuccess ACKs every 2xx (RFC 3261 §13.2.2.4); the first one wins, later
// ones and ones after Cancel are hung up at once.
func (o *OutCall) onSuccess(b *branch, res *sip.Response) {
	c := o.core
	dlg, err := dialogAsUAC(b.invite, res)
	if err != nil {
		o.log.Warn("bad 2xx", zap.Error(err))
		o.onFailure(b, sip.StatusBadGateway, "Bad 2xx")
		return
	}
	ack := o.ackFor(b, res, dlg)
	if err := c.writeRequest(ack.Clone()); err != nil {
		o.log.Warn("send ack", zap.Error(err))
	}
	b.tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			_ = c.writeRequest(ack.Clone())
		}
	})
	answer, sdpErr := parseSDP(res.Body())
	if sdpErr == nil && answer.audio == nil {
		sdpErr = fmt.Errorf("answer: %w: no RTP/AVP audio", ErrBadSDP)
	}

	o.mu.Lock()
	b.final = true
	o.pending--
	wins := o.winner == nil && !o.cancelRequested && !o.isDecided && sdpErr == nil
	var others []*branch
	if wins {
		o.winner, o.dlg = b, dlg
		for _, other := range o.branches {
			if other != b && other.provisional && !other.final && !other.cancelSent {
				other.cancelSent = true
				others = append(others, other)
			}
		}
	} else if sdpErr != nil {
		o.failures = append(o.failures, failure{status: sip.StatusNotAcceptableHere, reason: "Unusable Answer"})
	}
	o.mu.Unlock()

	if !wins {
		if sdpErr != nil {
			o.log.Warn("unusable answer", zap.Error(sdpErr))
		}
		// RFC 3261 §15: a 2xx we cannot keep is ACKed and then ended by BYE.
		ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		if err := c.bye(ctx, dlg); err != nil {
			o.log.Debug("bye extra 2xx", zap.Error(err))
		}
		cancel()
		b.tx.Terminate()
		o.maybeFail()
		return
	}
	pt := uint8(0)
	for _, cd := range answer.audio.codecs {
		if cd.pt == 0 || cd.pt == 8 {
			pt = cd.pt
			break
		}
	}
	o.media.start(answer.audio.addr, pt)
	o.decide(sip.StatusOK, nil)
	o.log.Info("call answered", zap.String("remote_addr", answer.audio.addr.String()), zap.Uint8("pt", pt))
	for _, other := range others {
		o.cancelAsync(other)
	}
}

// ackFor builds the ACK for a 2xx: a new transaction on the dialog
// (RFC 3261 §13.2.2.4) with the INVITE's CSeq number.
func (o *OutCall) ackFor(b *branch, res *sip.Response, dlg *dialog) *sip.Request {
	ack := sip.NewRequest(sip.ACK, *dlg.remoteTarget.Clone())
	for _, r := range dlg.routeSet {
		ack.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	maxFwd := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&maxFwd)
	ack.AppendHeader(sip.HeaderClone(b.invite.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(b.invite.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: b.invite.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(sip.HeaderClone(b.invite.Contact()))
	ack.SetBody(nil)
	return ack
}

// onFailure records a non-2xx final (or a dead transaction) on b.
func (o *OutCall) onFailure(b *branch, status int, reason string) {
	o.mu.Lock()
	if !b.final {
		b.final = true
		o.pending--
		o.failures = append(o.failures, failure{status: status, reason: reason})
	}
	o.mu.Unlock()
	o.maybeFail()
}

// maybeFail decides the call failed once every branch is final and none won.
func (o *OutCall) maybeFail() {
	o.mu.Lock()
	if o.pending > 0 || o.winner != nil || o.isDecided {
		o.mu.Unlock()
		return
	}
	f := bestFailure(o.failures, o.cancelRequested)
	o.mu.Unlock()
	o.decide(f.status, &StatusError{Status: f.status, Reason: f.reason})
	o.finishEnded()
}

// bestFailure picks the status to report (RFC 3261 §16.7 step 6, simplified):
// 487 after Cancel, any 6xx, else the lowest class and code.
func bestFailure(failures []failure, canceled bool) failure {
	if canceled {
		return failure{status: sip.StatusRequestTerminated, reason: "Request Terminated"}
	}
	best := failure{status: sip.StatusRequestTimeout, reason: "Request Timeout"}
	for i, f := range failures {
		switch {
		case f.status >= 600:
			return f
		case i == 0 || f.status < best.status:
			best = f
		}
	}
	return best
}

// failure is one branch's final non-2xx outcome.
type failure struct {
	status int
	reason string
}

func (o *OutCall) decide(status int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.isDecided {
		return
	}
	o.isDecided, o.status, o.err = true, status, err
	close(o.decided)
}

// cancelAsync sends CANCEL for b on a goroutine the Core waits for.
func (o *OutCall) cancelAsync(b *branch) {
	o.core.goTracked(func() {
		ctx, cancel := o.core.boundCtx(context.Background())
		defer cancel()
		ctx, cancelT := context.WithTimeout(ctx, cancelTimeout)
		defer cancelT()
		if err := o.sendCancel(ctx, b); err != nil {
			o.log.Debug("cancel branch", zap.Error(err))
		}
	})
}

// sendCancel sends CANCEL for b's INVITE: same Request-URI, top Via
// (branch), Call-ID, From, To and CSeq number (RFC 3261 §9.1).
func (o *OutCall) sendCancel(ctx context.Context, b *branch) error {
	inv := b.invite
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(h))
	}
	req.SetBody(nil)
	res, err := o.core.doRequest(ctx, req)
	if err != nil {
		return fmt.Errorf("cancel %s: %w", o.callID, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("cancel %s: %w", o.callID, &StatusError{Status: res.StatusCode, Reason: res.Reason})
	}
	return nil
}

// Result waits for the final outcome: (200, nil) when answered, otherwise
// the failure status and a *StatusError.
func (o *OutCall) Result(ctx context.Context) (int, error) {
	select {
	case <-o.decided:
	case <-ctx.Done():
		return 0, fmt.Errorf("call result %s: %w", o.callID, ctx.Err())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.status, o.err
}

// Cancel sends CANCEL on every branch that has had a provisional response;
// the others get it as soon as theirs arrives.
func (o *OutCall) Cancel(ctx context.Context) error {
	o.mu.Lock()
	if o.winner != nil {
		o.mu.Unlock()
		return fmt.Errorf("cancel %s: %w", o.callID, ErrAlreadyAnswered)
	}
	if o.isDecided {
		o.mu.Unlock()
		return fmt.Errorf("cancel %s: %w", o.callID, ErrCallEnded)
	}
	o.cancelRequested = true
	var now []*branch
	for _, b := range o.branches {
		if b.provisional && !b.final && !b.cancelSent {
			b.cancelSent = true
			now = append(now, b)
		}
	}
	o.mu.Unlock()
	var errs []error
	for _, b := range now {
		if err := o.sendCancel(ctx, b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HangUp sends BYE on the answered call.
func (o *OutCall) HangUp(ctx context.Context) error {
	o.mu.Lock()
	dlg, winner := o.dlg, o.winner
	o.mu.Unlock()
	if dlg == nil {
		return fmt.Errorf("hang up %s: %w", o.callID, ErrNotAnswered)
	}
	if !o.finish("core") {
		return fmt.Errorf("hang up %s: %w", o.callID, ErrCallEnded)
	}
	err := o.core.bye(ctx, dlg)
	winner.tx.Terminate()
	if err != nil {
		return fmt.Errorf("hang up: %w", err)
	}
	return nil
}

// takeBye ends the call on a BYE from the answered far side.
func (o *OutCall) takeBye(req *sip.Request) bool {
	o.mu.Lock()
	dlg, winner := o.dlg, o.winner
	o.mu.Unlock()
	if dlg == nil || !dlg.matches(req) {
		return false
	}
	if o.finish("remote") {
		winner.tx.Terminate()
	}
	return true
}

// finish closes Ended, stops media and forgets the call; true the first time.
func (o *OutCall) finish(by string) bool {
	first := false
	o.endOnce.Do(func() {
		first = true
		close(o.ended)
		o.media.close()
		o.core.mu.Lock()
		delete(o.core.outCalls, o.callID)
		o.core.mu.Unlock()
		sent, received := o.Packets()
		o.log.Info("call end", zap.String("reason", by), zap.Uint64("packets_sent", sent),
			zap.Uint64("packets_received", received), zap.Duration("dur", time.Since(o.start)))
	})
	return first
}

// finishEnded ends a call that never got answered.
func (o *OutCall) finishEnded() { o.finish("failed") }

// shutdown is Close's path: decide if undecided, end, stop media.
func (o *OutCall) shutdown() {
	o.decide(sip.StatusServiceUnavailable, fmt.Errorf("call %s: %w", o.callID, ErrClosed))
	o.finish("core")
}

func (c *Core) findOutCall(callID string) *OutCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outCalls[callID]
}

// Ended is closed when the far side sent BYE, after HangUp, or when the call
// can no longer be answered.
func (o *OutCall) Ended() <-chan struct{} { return o.ended }

// Packets returns RTP packets sent to and received from the far side.
func (o *OutCall) Packets() (sent, received uint64) {
	return o.media.sent.Load(), o.media.received.Load()
}

// CallID is the SIP Call-ID shared by every branch.
func (o *OutCall) CallID() string { return o.callID }
