package b2bua

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Reliable provisional responses (RFC 3262) are the gateway's own business
// on the core leg: it PRACKs the core's reliable 18x itself, and sends the
// core reliable 18x when the core requires them. The browser sees plain
// 18x and never has to support 100rel. Early media (RFC 5009): the core's
// P-Early-Media decides whether the browser gets the 18x's description.

var errNoPRACK = errors.New("no PRACK for our reliable provisional response")

// reliability is a call's 100rel state on the core leg.
type reliability struct {
	// pracked is the last RSeq we acknowledged, per early dialog (To tag).
	pracked map[string]uint32
	// required: the core's INVITE requires our 18x to be reliable.
	required bool
	rseq     uint32
	// unacked is our reliable 18x awaiting its PRACK; since is when it was
	// first sent, wait the next retransmission interval.
	unacked *sip.Response
	since   time.Time
	wait    time.Duration
	// queued provisionals wait for the PRACK of the one before (RFC 3262
	// §3: one unacknowledged reliable provisional at a time).
	queued []*sip.Response
	// held is a 2xx waiting for the PRACK of a reliable 18x that carried
	// a description (RFC 3262 §3).
	held *sip.Response
}

// maxQueuedProvisionals bounds what waits behind an unacknowledged 18x.
const maxQueuedProvisionals = 4

func optionTags(msg sip.Message, header string) []string {
	var out []string
	for _, h := range msg.GetHeaders(header) {
		for _, t := range strings.Split(h.Value(), ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(t)))
		}
	}
	return out
}

func hasTag(msg sip.Message, header, tag string) bool {
	for _, t := range optionTags(msg, header) {
		if t == tag {
			return true
		}
	}
	return false
}

// prack acknowledges the core's reliable 18x in its early dialog; false
// for a retransmission, which must not reach the browser again.
func (c *Call) prack(b *leg, res *sip.Response) bool {
	h := res.GetHeader("RSeq")
	if h == nil {
		return true // not reliable after all: relay as it is
	}
	rseq, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return false
	}
	tag := tagOf(res.To().Params)
	if b.confirmed && tag != b.dlg.remoteTag {
		return false // another fork, after the answer: it is being ended
	}
	if c.rel.pracked == nil {
		c.rel.pracked = map[string]uint32{}
	}
	if last, ok := c.rel.pracked[tag]; ok && uint32(rseq) != last+1 {
		return false // a retransmission, or out of order (RFC 3262 §4: not acknowledged)
	}
	c.rel.pracked[tag] = uint32(rseq)
	b.earlyDialog(res)
	req := b.dlg.request(sip.PRACK, 0)
	inviteSeq, _ := cseqOf(b.invite)
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, inviteSeq)))
	copyHeaders(b.invite, req, "Authorization", "Proxy-Authorization")
	tx := &clientTx{leg: b.side, purpose: txPrack, req: req}
	b.watch(tx)
	if err := b.tr.send(c, tx); err != nil {
		delete(b.out, tx)
		c.log.Warn("prack", zap.Error(err))
	}
	return true
}

// earlyDialog follows the early dialog a 18x with a To tag makes (RFC 3261
// 12.1): in-dialog requests such as INFO or PRACK may flow before the
// answer; the latest fork's is the one kept.
func (l *leg) earlyDialog(res *sip.Response) {
	if tag := tagOf(res.To().Params); tag != "" && !l.confirmed {
		l.dlg.remoteTag = tag
		l.dlg.remoteTarget = remoteTargetOf(res, l.dlg.remoteTarget)
		l.dlg.routes = routeSet(res, true)
	}
}

// earlyMediaAllowed reads P-Early-Media (RFC 5009) on the core's 18x: the
// network may say the browser is not to be sent early media.
func earlyMediaAllowed(res *sip.Response) bool {
	h := res.GetHeader("P-Early-Media")
	if h == nil {
		return true
	}
	for _, v := range strings.Split(h.Value(), ",") {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "sendrecv", "sendonly":
			return true
		}
	}
	return false
}

// sendProvisional answers the core's INVITE with a 18x, reliably when the
// core requires it.
func (c *Call) sendProvisional(a *leg, out *sip.Response) error {
	if !c.rel.required {
		return a.inviteIn.reply(out)
	}
	if c.rel.unacked != nil {
		if len(c.rel.queued) < maxQueuedProvisionals {
			c.rel.queued = append(c.rel.queued, out)
		}
		return nil
	}
	if c.rel.rseq == 0 {
		c.rel.rseq = 1 + rand.Uint32N(1<<31-1) // RFC 3262 §3: start anywhere below 2**31
	} else {
		c.rel.rseq++
	}
	out.AppendHeader(sip.NewHeader("Require", "100rel"))
	out.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(c.rel.rseq), 10)))
	c.rel.unacked, c.rel.since, c.rel.wait = out, time.Now(), sip.T1
	c.arm(timerKey{timerReliable, SideCore}, sip.T1)
	return a.inviteIn.reply(out)
}

// onReliableTimer retransmits our unacknowledged 18x, T1 doubling, for
// 64·T1; then the INVITE is refused (RFC 3262 §3).
func (c *Call) onReliableTimer() {
	out := c.rel.unacked
	a := c.core
	if out == nil || a.inviteIn == nil || a.inviteIn.final {
		return
	}
	if time.Since(c.rel.since) >= 64*sip.T1 {
		c.rel.unacked = nil
		c.fail(statusErr(500, "Server Internal Error", errNoPRACK), EndTimeout)
		return
	}
	_ = a.inviteIn.respond(out)
	c.rel.wait *= 2
	c.arm(timerKey{timerReliable, SideCore}, c.rel.wait)
}

// onPrack takes the core's PRACK of our reliable 18x: 200, then whatever
// waited for it.
func (c *Call) onPrack(x *leg, in *serverTx) {
	rack := strings.Fields(headerValue(in.req, "RAck"))
	out := c.rel.unacked
	inviteSeq, _ := cseqOf(x.invite)
	if out == nil || len(rack) != 3 || rack[0] != headerValue(out, "RSeq") ||
		rack[1] != strconv.FormatUint(uint64(inviteSeq), 10) || !strings.EqualFold(rack[2], "INVITE") {
		_ = in.reply(response(in.req, 481, "Call/Transaction Does Not Exist", x.dlg.localTag))
		return
	}
	_ = in.reply(response(in.req, 200, "OK", x.dlg.localTag))
	c.rel.unacked = nil
	c.disarm(timerKey{timerReliable, SideCore})
	if len(c.rel.queued) > 0 {
		next := c.rel.queued[0]
		c.rel.queued = c.rel.queued[1:]
		if err := c.sendProvisional(x, next); err != nil {
			c.log.Debug("provisional to core", zap.Error(err))
		}
		return
	}
	if held := c.rel.held; held != nil {
		c.rel.held = nil
		c.answerOrigin(x, held)
	}
}

// holds2xx: a 2xx must wait while a reliable 18x with a description is
// unacknowledged.
func (c *Call) holds2xx() bool {
	if c.rel.unacked != nil && len(c.rel.unacked.Body()) > 0 {
		return true
	}
	for _, q := range c.rel.queued {
		if len(q.Body()) > 0 {
			return true
		}
	}
	return false
}

func headerValue(msg sipMsg, name string) string {
	if h := msg.GetHeader(name); h != nil {
		return strings.TrimSpace(h.Value())
	}
	return ""
}
