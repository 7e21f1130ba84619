package b2bua

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// leg is one side of a call. The web and the core leg are the same type;
// what differs (a WebSocket flow or sipgo) sits behind its transport.
type leg struct {
	side Side
	tr   legTransport
	dlg  dialog
	oa   offerAnswer

	// invite is the leg's dialog-forming INVITE: the one it sent us (uas)
	// or the one we sent it.
	invite    *sip.Request
	inviteIn  *serverTx // set when this leg sent the INVITE
	inviteOut *clientTx // set when we sent it

	// ack is our ACK to this leg's 2xx, sent again for every retransmitted
	// 2xx (RFC 3261 13.2.2.4).
	ack *sip.Request
	// ok is our 2xx to this leg's INVITE, sent again until its ACK arrives
	// (RFC 3261 13.3.1.4); okWait is the next interval.
	ok     *sip.Response
	okWait int64 // nanoseconds, T1 doubling to T2
	// okOffers: that 2xx carries our offer (to an offerless re-INVITE);
	// its ACK carries the answer.
	okOffers bool

	// confirmed: the dialog on this leg exists (2xx sent or received).
	confirmed bool
	// byeSent: we ended this leg.
	byeSent bool
	// allowsUpdate: the leg listed UPDATE in its Allow (RFC 3311 §5.1).
	allowsUpdate bool

	// in holds the leg's requests we have not answered yet; bounded so a
	// peer cannot grow it (maxPendingPerLeg).
	in map[*serverTx]struct{}
	// out holds our requests on this leg that have no final response yet.
	out map[*clientTx]struct{}
}

// maxPendingPerLeg bounds the unanswered requests of one leg.
const maxPendingPerLeg = 32

func newLeg(side Side, tr legTransport) *leg {
	return &leg{side: side, tr: tr}
}

// track and watch record a request the leg sent us and one we sent it;
// the sets are made on first use, since most calls never need them.
func (l *leg) track(in *serverTx) {
	if l.in == nil {
		l.in = map[*serverTx]struct{}{}
	}
	l.in[in] = struct{}{}
}

func (l *leg) watch(tx *clientTx) {
	if l.out == nil {
		l.out = map[*clientTx]struct{}{}
	}
	l.out[tx] = struct{}{}
}

// receiveInvite makes the leg's dialog from the dialog-forming INVITE it
// sent us: on this leg the gateway is the UAS (RFC 3261 12.1.1).
func (l *leg) receiveInvite(in *serverTx) {
	inv := in.req
	l.invite, l.inviteIn = inv, in
	d := &l.dlg
	d.remoteTag = tagOf(inv.From().Params)
	d.local, d.localName = *inv.To().Address.Clone(), inv.To().DisplayName
	d.remote, d.remoteName = *inv.From().Address.Clone(), inv.From().DisplayName
	d.remoteTarget = remoteTargetOf(inv, inv.From().Address)
	d.routes = routeSet(inv, false)
	d.acceptCSeq(inv)
	l.allowsUpdate = allows(inv, sip.UPDATE)
}

// allows reads a message's Allow header for a method.
func allows(msg sip.Message, method sip.RequestMethod) bool {
	for _, h := range msg.GetHeaders("Allow") {
		for _, m := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(m), string(method)) {
				return true
			}
		}
	}
	return false
}

// legTransport carries one leg's messages: a browser's WebSocket flow, or
// sipgo toward the core.
type legTransport interface {
	// send starts a client transaction; its responses, or its failure, reach
	// the call as events.
	send(c *Call, tx *clientTx) error
	// ack sends the ACK of a 2xx, which has no transaction (RFC 3261 17.1.1.3).
	ack(req *sip.Request) error
	// ackFailure acknowledges a non-2xx final response to our INVITE where
	// the transaction layer below does not (RFC 3261 17.1.1.3).
	ackFailure(inv *sip.Request, res *sip.Response)
	// resend passes a 2xx again to the transport (RFC 3261 13.3.1.4).
	resend(res *sip.Response) error
	// retransmits2xx: whether a 2xx on this leg is retransmitted until ACK.
	// A browser is one reliable hop away; the core may be several proxies
	// and unreliable hops away.
	retransmits2xx() bool
	// prepareInDialog sets the next hop of an in-dialog request.
	prepareInDialog(req *sip.Request)
}

// serverTx is a request a leg sent us that the call must answer.
type serverTx struct {
	leg     Side
	req     *sip.Request
	respond func(*sip.Response) error
	release func() // we are done with it; nil when there is nothing to release
	final   bool
}

// reply sends a response once the transaction has no final one yet.
func (t *serverTx) reply(res *sip.Response) error {
	if t.final {
		return nil
	}
	if res.StatusCode >= 200 {
		t.final = true
	}
	err := t.respond(res)
	if t.final && t.release != nil {
		t.release()
	}
	return err
}

// txPurpose says what the call does with a client transaction's answer.
type txPurpose int

const (
	txUnknown txPurpose = iota
	txInvite            // the dialog-forming INVITE
	txRelay             // carries a request of the other leg
	txBye               // ends the leg
	txCancel            // cancels our INVITE
	txChange            // a re-INVITE or UPDATE of ours with an offer (sessionChange)
	txRefresh           // our session refresh toward the core (RFC 4028)
	txPrack             // our PRACK of the core's reliable 18x (RFC 3262)
	txInfo              // an INFO of ours (a digit toward the browser)
)

// clientTx is a request we sent on a leg.
type clientTx struct {
	leg         Side
	purpose     txPurpose
	req         *sip.Request
	relay       *serverTx // answered with this transaction's final response
	provisional bool      // a provisional response came back
	final       bool
	// ack is our ACK of this re-INVITE's 2xx, sent again for a
	// retransmitted 2xx.
	ack *sip.Request
	// stop ends the transaction below us (sipgo's, or the web match entry).
	stop func()
}

// offerState is a leg's place in RFC 3264 offer/answer (RFC 6337 §2).
type offerState int

const (
	offerUnknown       offerState = iota
	offerStable                   // no offer outstanding
	offerLocalPending             // we sent an offer on this leg
	offerRemotePending            // this leg sent us an offer
)

func (s offerState) String() string {
	switch s {
	case offerStable:
		return "stable"
	case offerLocalPending:
		return "local_offer_pending"
	case offerRemotePending:
		return "remote_offer_pending"
	}
	return "unknown"
}

// offerAnswer is one leg's offer/answer state: each leg negotiates on its
// own. It keeps the last description each way, and the two the leg's
// current session was agreed with, so a refresh that repeats the leg's is
// answered with ours without touching the other leg, and a refused offer
// leaves the session as it was (RFC 3261 14.2).
type offerAnswer struct {
	state  offerState
	local  []byte // the last description we sent the leg
	remote []byte // the last description the leg sent us
	// ours and theirs are the descriptions of the agreed session.
	ours, theirs []byte
}

// send records an offer or answer we sent on the leg.
func (o *offerAnswer) send(isOffer bool, sdp []byte) {
	o.local = sdp
	o.state = afterSDP(isOffer, offerLocalPending)
	if !isOffer {
		o.ours, o.theirs = sdp, o.remote
	}
}

// receive records an offer or answer the leg sent us.
func (o *offerAnswer) receive(isOffer bool, sdp []byte) {
	o.remote = sdp
	o.state = afterSDP(isOffer, offerRemotePending)
	if !isOffer {
		o.ours, o.theirs = o.local, sdp
	}
}

// refuse forgets an offer either way that was not accepted.
func (o *offerAnswer) refuse() {
	o.local, o.remote = o.ours, o.theirs
	o.state = offerStable
}

// afterSDP: an offer leaves its sender's offer pending; an answer makes the
// leg stable (RFC 6337 §2).
func afterSDP(isOffer bool, pending offerState) offerState {
	if isOffer {
		return pending
	}
	return offerStable
}
