package b2bua

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	authtoken "github.com/imsgate/imsgate/internal/token"
	"github.com/imsgate/imsgate/mediabridge"
)

// Call owns its two legs and its media session. One goroutine (run) owns
// all of it; SIP handlers, transaction pumps, timers and flow callbacks only
// enqueue events.
type Call struct {
	id     string
	g      *Gateway
	log    *zap.Logger
	origin Side // the leg that sent the dialog-forming INVITE
	// originBranch is the Via branch of the origin leg's INVITE, to know
	// its retransmissions; set before the call is published.
	originBranch string
	// flow is the browser's WebSocket flow the call is indexed under; it
	// changes when a reconnecting browser takes the call over (g.mu).
	flow  string
	web   *leg
	core  *leg
	media *mediabridge.Session
	// binding is the registration a call to the web was routed by;
	// replacing, the call an INVITE with Replaces from the core targets
	// (the browser is reached where that call reaches it).
	binding   *binding
	replacing *dialogIDs
	// ids are the call's dialogs once confirmed (transfer.go).
	ids atomic.Pointer[dialogIDs]

	events  chan event
	done    chan struct{}
	closing sync.RWMutex // see enqueue
	timers  map[timerKey]*callTimer
	// timerGen tells a timer's firing from a stale one.
	timerGen uint64

	state    CallState
	started  time.Time
	ringing  time.Time // the first provisional with a To tag
	answered time.Time
	// from and to are the origin INVITE's From URI and Request-URI.
	from, to string
	// digits counts the DTMF digits relayed either way.
	digits int

	// ending: the call is over; it lives on only until its INVITE on the
	// far leg has a final response (or 64·T1 after our CANCEL).
	ending bool
	cause  Cause
	// cancelPending: a CANCEL waits for the first provisional (RFC 3261 9.1).
	cancelPending bool
	// coreCanceled is set by sipgo's CANCEL callback (which runs under its
	// transaction lock) before the event reaches the call: no response may
	// follow the 487 sipgo sent.
	coreCanceled atomic.Bool
	// endedForks are the To tags of other forks' 2xx we ACKed and ended.
	endedForks map[string]bool
	// detached: the browser's WebSocket dropped; the call waits for it
	// (reconnect.go); consentLost: its media went silent meanwhile.
	detached    bool
	consentLost bool
	// mediaPath is how the browser's media came, once connected (media_path.go).
	mediaPath string
	// change is the session change in flight (call_change.go); waiting, an
	// offer that waits for the ACK of the other leg's INVITE.
	change  *sessionChange
	waiting *serverTx
	// timer is the session timer agreed with the core (session_timer.go).
	timer sessionTimer
	// rel is 100rel on the core leg (reliable.go).
	rel reliability
	// slot is the identity the call is counted under (call_limits.go).
	slot     string
	slotHeld atomic.Bool
	// caller is the identity a browser's call is placed as toward the
	// core (its P-Asserted-Identity); creds answer the core's challenges
	// for it in token mode (nil: the browser answers them); challenges
	// counts those answered.
	caller     sip.Uri
	creds      *authtoken.Identity
	challenges int
}

type eventKind int

const (
	evUnknown      eventKind = iota
	evRequest                // a request from a leg (in)
	evResponse               // a response to one of our requests (tx, res)
	evTxFailed               // one of our transactions ended with no final response (tx, err)
	evTxTimeout              // a web transaction saw no response in 64·T1 (tx)
	evCoreCancel             // the core cancelled its INVITE; sipgo answered 200 and 487
	evTimer                  // one of the call's timers fired (timer)
	evFlowClosed             // the browser's WebSocket closed
	evShutdown               // the gateway is stopping
	evTokenExpired           // the flow's token ran out, its grace too
	evMedia                  // a media-side event (ICE, DTLS, consent)
	evFlowMoved              // the browser reconnected: its dialogs move to flow
)

type event struct {
	kind  eventKind
	in    *serverTx
	tx    *clientTx
	res   *sip.Response
	err   error
	timer timerKey
	gen   uint64
	media mediabridge.Event
	flow  webFlow
	// flowName is the flow that closed (evFlowClosed): a call that moved
	// on meanwhile ignores it.
	flowName string
}

// eventQueue bounds what waits for a call's goroutine. The goroutine never
// blocks, so a full queue only slows the sender for a moment; a call at
// rest should cost little memory.
const eventQueue = 16

func (g *Gateway) newCall(origin Side, f webFlow, webCallID, coreCallID string) (*Call, error) {
	c := &Call{
		id:      token(12),
		g:       g,
		origin:  origin,
		flow:    f.Flow(),
		events:  make(chan event, eventQueue),
		done:    make(chan struct{}),
		state:   StateCalling,
		started: time.Now(),
	}
	c.web = newLeg(SideWeb, &webTransport{g: g, flow: f})
	c.core = newLeg(SideCore, newCoreTransport(g))
	c.web.dlg.callID, c.web.dlg.localTag = webCallID, token(12)
	c.core.dlg.callID, c.core.dlg.localTag = coreCallID, token(12)
	// The call's own fields; the request that began it logs its own.
	c.log = g.log.With(zap.String("call_id", c.id), zap.String("flow", c.flow),
		zap.String("web_sip_call_id", webCallID), zap.String("core_sip_call_id", coreCallID))
	ms, err := g.media.NewSession(c.log)
	if err != nil {
		return nil, statusErr(503, "Service Unavailable", err)
	}
	c.media = ms
	// Media-side events (ICE/DTLS connected or failed) reach the call like
	// any other event; the call decides what they mean for the dialogs.
	ms.OnEvent(func(ev mediabridge.Event) { c.notify(event{kind: evMedia, media: ev}) })
	ms.RelayEventsToWeb(g.cfg.DTMF.ToWeb == "passthrough")
	ms.RelayEventsToCore(relaysWebEvents(g.cfg.DTMF.ToCore))
	ms.DetectInband(g.cfg.DTMF.DetectInband)
	return c, nil
}

func (c *Call) info() CallInfo {
	c.g.mu.Lock()
	flow := c.flow
	c.g.mu.Unlock()
	return CallInfo{ID: c.id, Origin: c.origin, WebCallID: c.web.dlg.callID, CoreCallID: c.core.dlg.callID,
		Flow: flow, Caller: c.from, Callee: c.to, Started: c.started, Ringing: c.ringing, Answered: c.answered}
}

// currentFlow is the browser flow the call is on now.
func (c *Call) currentFlow() string {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	return c.flow
}

func (c *Call) leg(s Side) *leg {
	if s == SideWeb {
		return c.web
	}
	return c.core
}

func (c *Call) other(l *leg) *leg {
	if l == c.web {
		return c.core
	}
	return c.web
}

// enqueue hands an event to the call's goroutine; false once the call has
// ended (the event is then the caller's to dispose of). closing makes the
// end exact: finish closes done, then waits for senders in flight before
// it drains the queue, so no event is stranded.
func (c *Call) enqueue(ev event) bool {
	c.closing.RLock()
	defer c.closing.RUnlock()
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}

// notify hands an event over only if there is room: for callbacks that run
// under a lock of sipgo or of the media side and must never wait.
func (c *Call) notify(ev event) {
	c.closing.RLock()
	defer c.closing.RUnlock()
	select {
	case <-c.done:
	case c.events <- ev:
	default:
	}
}

// run is the call's goroutine: it starts the far leg, then handles events
// until the call has ended and its INVITE transactions are settled.
func (c *Call) run(ctx context.Context) {
	defer c.finish()
	c.start()
	for !c.over() {
		select {
		case ev := <-c.events:
			c.handle(ev)
		case <-ctx.Done():
			c.end(Cause{Reason: EndShutdown, By: SideGateway})
			return
		}
	}
}

// over: the call ended and nothing it sent still waits for a final answer:
// its INVITE on the far leg, and requests it relayed (their answer may have
// left before the BYE that ended the call, and is owed to the other leg).
func (c *Call) over() bool {
	if !c.ending {
		return false
	}
	if c.cause.Reason == EndShutdown {
		return true
	}
	for _, l := range []*leg{c.web, c.core} {
		if tx := l.inviteOut; tx != nil && !tx.final {
			return false
		}
		for tx := range l.out {
			if tx.purpose == txRelay && !tx.final {
				return false // its answer is owed to the other leg
			}
		}
	}
	return true
}

func (c *Call) handle(ev event) {
	switch ev.kind {
	case evRequest:
		c.onRequest(ev.in)
	case evResponse:
		c.onResponse(ev.tx, ev.res)
	case evTxFailed, evTxTimeout:
		c.onTxFailed(ev.tx, ev.err, ev.kind == evTxTimeout)
	case evCoreCancel:
		c.onCoreCancel()
	case evTimer:
		if t := c.timers[ev.timer]; t != nil && t.gen == ev.gen {
			delete(c.timers, ev.timer)
			c.onTimer(ev.timer)
		}
	case evFlowClosed:
		if ev.flowName == "" || ev.flowName == c.currentFlow() {
			c.onFlowClosed()
		}
	case evFlowMoved:
		c.onFlowMoved(ev.flow)
	case evShutdown:
		c.end(Cause{Reason: EndShutdown, By: SideGateway})
	case evTokenExpired:
		c.end(Cause{Reason: EndTokenExpired, By: SideGateway})
	case evMedia:
		c.onMedia(ev.media)
	}
}

// onMedia takes what the media side reports. A browser whose DTLS fails
// hears nothing: the call is told, and ends once its leg says so; a browser
// whose consent checks stopped is gone (RFC 7675), and the call ends.
func (c *Call) onMedia(ev mediabridge.Event) {
	switch ev.Kind {
	case mediabridge.EventConnected:
		c.onMediaConnected()
	case mediabridge.EventFailed:
		c.log.Warn("media failed on the web leg", zap.Error(ev.Err))
		c.note("media", "browser media failed: %v", ev.Err)
	case mediabridge.EventDTMF:
		c.onDigit(ev)
	case mediabridge.EventConsentLost:
		// Hold, mute and silence keep consent checks coming; their end
		// means the browser is gone, unless it is reconnecting: then it has
		// one more consent period once back (reconnect.go).
		if c.detached {
			c.consentLost = true
			return
		}
		c.log.Warn("browser's ICE consent checks stopped")
		c.note("media", "the browser's ICE consent checks stopped")
		c.end(Cause{Reason: EndMediaTimeout, By: SideWeb})
	}
}

// note tells the observers that hear notes (the timeline) what happened.
func (c *Call) note(kind, format string, args ...any) {
	if n, ok := c.g.observer.(NoteObserver); ok {
		n.CallNoted(c.info(), CallNote{Kind: kind, Text: fmt.Sprintf(format, args...)}, time.Now())
	}
}

func (c *Call) setState(s CallState) {
	if c.state == s {
		return
	}
	c.state = s
	if s == StateEarly && c.ringing.IsZero() {
		c.ringing = time.Now()
	}
	c.g.observer.CallStateChanged(c.info(), s, time.Now())
}

// finish releases everything the call holds and logs its summary.
func (c *Call) finish() {
	c.g.removeCall(c)
	for k := range c.timers {
		c.disarm(k)
	}
	for _, l := range []*leg{c.web, c.core} {
		for in := range l.in {
			// A relayed request whose answer never came (shutdown).
			_ = in.reply(response(in.req, 481, "Call/Transaction Does Not Exist", l.dlg.localTag))
			delete(l.in, in)
		}
		for tx := range l.out {
			// A BYE or CANCEL toward the core keeps its own retransmissions;
			// everything else ends with the call.
			if tx.stop != nil && !(l.side == SideCore && (tx.purpose == txBye || tx.purpose == txCancel)) {
				tx.stop()
			}
		}
	}
	if err := c.media.Close(); err != nil {
		c.log.Warn("media close", zap.Error(err))
	}
	st, qos := c.media.Stats(), c.media.QoS()
	var talk time.Duration
	if !c.answered.IsZero() {
		talk = time.Since(c.answered)
	}
	c.state = StateEnded
	c.log.Info("call ended", zap.Stringer("reason", c.cause.Reason), zap.Stringer("by", c.cause.By),
		zap.Int("status", c.cause.Status), zap.NamedError("cause", c.cause.Err),
		zap.Duration("dur", time.Since(c.started)), zap.Duration("talk", talk), zap.String("media_path", c.mediaPath), zap.Any("media", st),
		zap.Any("qos", qos))
	info := c.info()
	info.Summary = &CallSummary{
		Codec: c.media.Codec(), MediaPath: c.mediaPath, DTMFDigits: c.digits,
		WebToCore: Traffic{Packets: st.WebToCore.Packets, Bytes: st.WebToCore.Bytes},
		CoreToWeb: Traffic{Packets: st.CoreToWeb.Packets, Bytes: st.CoreToWeb.Bytes},
		QoS:       qos,
	}
	c.g.observer.CallEnded(info, c.cause, time.Now())
	close(c.done)
	c.closing.Lock() // senders in flight have sent or given up
	defer c.closing.Unlock()
	defer c.g.live.Add(-1)
	// Answer what is still queued so no request is left unanswered.
	for {
		select {
		case ev := <-c.events:
			c.rejectLate(ev)
		default:
			return
		}
	}
}

// rejectLate answers an event that arrived after the call ended.
func (c *Call) rejectLate(ev event) {
	switch ev.kind {
	case evRequest:
		if !ev.in.req.IsAck() {
			_ = ev.in.reply(response(ev.in.req, 481, "Call/Transaction Does Not Exist", c.leg(ev.in.leg).dlg.localTag))
		}
		ev.in.releaseNow()
	case evResponse:
		if ev.tx.stop != nil && ev.tx.leg == SideWeb {
			ev.tx.stop()
		}
	}
}

// timerKey names one of a call's timers.
type timerKey struct {
	kind timerKind
	side Side
}

type timerKind int

const (
	timerUnknown       timerKind = iota
	timerNoAnswer                // upstream.invite_timeout for the far leg's INVITE
	timerCancelWait              // 64·T1 for a final response after our CANCEL
	timerOK                      // next retransmission of our 2xx (T1 doubling to T2)
	timerAckWait                 // 64·T1 for the ACK of our 2xx
	timerGlare                   // RFC 3261 14.1 back-off before our offer goes again after a 491
	timerRefresh                 // our session refresh toward the core is due (RFC 4028)
	timerSessionExpiry           // the core's refresh is overdue (RFC 4028 §10)
	timerReconnect               // calls.reconnect_grace for a browser whose WebSocket dropped
	timerReliable                // next retransmission of our reliable 18x to the core (RFC 3262)
	timerConsent                 // a reconnected browser whose media went silent must be heard again
)

type callTimer struct {
	t   *time.Timer
	gen uint64
}

// arm (re)starts one of the call's timers; a stale firing is recognised by
// its generation and ignored.
func (c *Call) arm(k timerKey, d time.Duration) {
	c.disarm(k)
	c.timerGen++
	gen := c.timerGen
	ct := &callTimer{gen: gen}
	ct.t = time.AfterFunc(d, func() { c.enqueue(event{kind: evTimer, timer: k, gen: gen}) })
	if c.timers == nil {
		c.timers = map[timerKey]*callTimer{}
	}
	c.timers[k] = ct
}

func (c *Call) disarm(k timerKey) {
	if t := c.timers[k]; t != nil {
		t.t.Stop()
		delete(c.timers, k)
	}
}

func (c *Call) onTimer(k timerKey) {
	switch k.kind {
	case timerNoAnswer:
		c.end(Cause{Reason: EndNoAnswer, By: SideGateway})
	case timerCancelWait:
		// RFC 3261 9.1: no final response 64·T1 after the CANCEL; the
		// INVITE transaction is taken as destroyed.
		if tx := c.leg(k.side).inviteOut; tx != nil && !tx.final {
			c.log.Warn("no final response after cancel", zap.Stringer("leg", k.side))
			tx.final = true
		}
	case timerOK:
		l := c.leg(k.side)
		if l.ok == nil {
			return
		}
		if err := l.tr.resend(l.ok); err != nil {
			c.log.Debug("2xx retransmission", zap.Stringer("leg", k.side), zap.Error(err))
		}
		l.okWait = min(2*l.okWait, int64(sip.T2))
		c.arm(k, time.Duration(l.okWait))
	case timerAckWait:
		l := c.leg(k.side)
		if l.ok == nil {
			return
		}
		l.ok, l.okOffers = nil, false
		c.disarm(timerKey{timerOK, k.side})
		c.log.Warn("no ACK for our 2xx", zap.Stringer("leg", k.side))
		c.end(Cause{Reason: EndAckTimeout, By: k.side, Status: 408})
	case timerGlare:
		c.onGlareTimer(k.side)
	case timerRefresh:
		c.refreshSession()
	case timerSessionExpiry:
		c.onSessionExpired()
	case timerReliable:
		c.onReliableTimer()
	case timerConsent:
		if !c.media.WebAlive() {
			c.log.Warn("reconnected browser's media never came back")
			c.end(Cause{Reason: EndMediaTimeout, By: SideWeb})
		}
	case timerReconnect:
		c.log.Info("browser did not reconnect in time", zap.Duration("grace", c.g.cfg.Calls.ReconnectGrace))
		c.end(Cause{Reason: EndReconnectTimeout, By: SideWeb})
	}
}
