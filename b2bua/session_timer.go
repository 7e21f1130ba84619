package b2bua

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// Session timers (RFC 4028) on the core leg only: the gateway agrees an
// interval with the core and refreshes it itself (UPDATE when the core
// allows it, else a re-INVITE repeating our description), or expects the
// core's refreshes and ends the call when they stop. Browsers never see a
// refresh: their libraries handle session timers badly, and media liveness
// on their side is ICE consent.

// sessionTimer is the agreed interval on the core leg; zero is none.
type sessionTimer struct {
	interval  time.Duration
	weRefresh bool
	// supported: the core listed "timer" (Supported or Require), so our
	// answers may Require it.
	supported bool
}

// sessionExpires reads Session-Expires (compact form x) of a message.
func sessionExpires(msg sipMsg) (time.Duration, string, bool) {
	h := msg.GetHeader("Session-Expires")
	if h == nil {
		h = msg.GetHeader("x")
	}
	if h == nil {
		return 0, "", false
	}
	value, params, _ := strings.Cut(h.Value(), ";")
	secs, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil || secs <= 0 {
		return 0, "", false
	}
	refresher := ""
	for _, p := range strings.Split(params, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(v))
		}
	}
	return time.Duration(secs) * time.Second, refresher, true
}

func minSE(msg sipMsg) time.Duration {
	if h := msg.GetHeader("Min-SE"); h != nil {
		if secs, err := strconv.Atoi(strings.TrimSpace(strings.Split(h.Value(), ";")[0])); err == nil && secs > 0 {
			return time.Duration(secs) * time.Second
		}
	}
	return 0
}

// listsTimer: the message lists the timer extension as supported or required.
func listsTimer(msg sip.Message) bool {
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range msg.GetHeaders(name) {
			for _, opt := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(opt), "timer") {
					return true
				}
			}
		}
	}
	return false
}

// tooBrief answers a core request whose Session-Expires is below our
// Min-SE with 422 (RFC 4028 §8.1); nil when it is acceptable.
func (g *Gateway) tooBrief(req *sip.Request, toTag string) *sip.Response {
	se, _, ok := sessionExpires(req)
	if !ok || se >= g.cfg.Calls.MinSE {
		return nil
	}
	res := response(req, 422, "Session Interval Too Small", toTag)
	res.AppendHeader(sip.NewHeader("Min-SE", seconds(g.cfg.Calls.MinSE)))
	return res
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// askTimer puts our session timer request on an INVITE to the core (its
// Supported lists timer).
func (c *Call) askTimer(req *sip.Request) {
	req.AppendHeader(sip.NewHeader("Session-Expires", seconds(c.g.cfg.Calls.SessionExpires)))
	req.AppendHeader(sip.NewHeader("Min-SE", seconds(c.g.cfg.Calls.MinSE)))
}

// retryAfter422 sends our INVITE to the core again with the interval its
// 422 asks for (RFC 4028 §7.4); false when that is not ours to do.
func (c *Call) retryAfter422(b *leg, res *sip.Response) bool {
	want := minSE(res)
	cur, _, _ := sessionExpires(b.invite)
	if b.side != SideCore || want <= cur || want > 24*time.Hour {
		return false
	}
	req := b.invite.Clone()
	req.RemoveHeader("Session-Expires")
	req.RemoveHeader("Min-SE")
	req.AppendHeader(sip.NewHeader("Session-Expires", seconds(want)))
	req.AppendHeader(sip.NewHeader("Min-SE", seconds(want)))
	if !c.resendInvite(b, req) {
		return false
	}
	c.log.Info("core asked for a longer session interval; INVITE sent again", zap.Duration("session_expires", want))
	return true
}

// resendInvite sends a leg's INVITE again, changed after the far side's
// error response (a new transaction: our Via, the next CSeq).
func (c *Call) resendInvite(b *leg, req *sip.Request) bool {
	req.RemoveHeader("Via")
	b.dlg.cseq++
	req.CSeq().SeqNo = b.dlg.cseq
	tx := &clientTx{leg: b.side, purpose: txInvite, req: req}
	b.invite, b.inviteOut = req, tx
	b.watch(tx)
	if err := b.tr.send(c, tx); err != nil {
		delete(b.out, tx)
		return false
	}
	return true
}

// agreeTimer takes the interval from the core's 2xx to our INVITE (the
// core chose the refresher, RFC 4028 §7.2).
func (c *Call) agreeTimer(res *sip.Response) {
	se, refresher, ok := sessionExpires(res)
	if !ok {
		return
	}
	c.timer = sessionTimer{interval: se, weRefresh: refresher != "uas", supported: true}
	c.armSessionTimer()
}

// answerTimer sets the interval from a core request we answer 2xx (its
// INVITE or a refresh) and puts it on our answer (RFC 4028 §9). Without a
// Session-Expires in the request there is no timer.
func (c *Call) answerTimer(req *sip.Request, res *sip.Response) {
	se, refresher, ok := sessionExpires(req)
	if !ok {
		c.timer = sessionTimer{}
		c.disarm(timerKey{timerRefresh, SideCore})
		c.disarm(timerKey{timerSessionExpiry, SideCore})
		return
	}
	supported := listsTimer(req)
	se = min(se, max(c.g.cfg.Calls.SessionExpires, minSE(req)))
	switch refresher {
	case "uac", "uas":
	case "":
		// Ours to choose: the core refreshes if it can.
		refresher = "uas"
		if supported {
			refresher = "uac"
		}
	}
	c.timer = sessionTimer{interval: se, weRefresh: refresher == "uas", supported: supported}
	res.AppendHeader(sip.NewHeader("Session-Expires", seconds(se)+";refresher="+refresher))
	if supported {
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
	c.armSessionTimer()
}

// armSessionTimer: half the interval to our refresh, or the interval less
// min(32 s, a third) before we take the session as gone (RFC 4028 §10).
func (c *Call) armSessionTimer() {
	c.disarm(timerKey{timerRefresh, SideCore})
	c.disarm(timerKey{timerSessionExpiry, SideCore})
	iv := c.timer.interval
	if iv <= 0 {
		return
	}
	if c.timer.weRefresh {
		c.arm(timerKey{timerRefresh, SideCore}, iv/2)
		return
	}
	c.arm(timerKey{timerSessionExpiry, SideCore}, iv-min(32*time.Second, iv/3))
}

// keepTimer puts the agreed interval on a request of ours that refreshes
// the core's session (a refresh, or a session change), RFC 4028 §7.4.
func (c *Call) keepTimer(req *sip.Request) {
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	if c.timer.interval <= 0 {
		return
	}
	refresher := "uas"
	if c.timer.weRefresh {
		refresher = "uac"
	}
	req.AppendHeader(sip.NewHeader("Session-Expires", seconds(c.timer.interval)+";refresher="+refresher))
}

// agreeRefresh takes the interval from the core's 2xx to a request of ours
// that refreshed the session; without a Session-Expires the timer is off.
func (c *Call) agreeRefresh(res *sip.Response) {
	if c.timer.interval <= 0 {
		return
	}
	if se, refresher, ok := sessionExpires(res); ok {
		c.timer.interval, c.timer.weRefresh = se, refresher != "uas"
	} else {
		c.timer = sessionTimer{}
	}
	c.armSessionTimer()
}

// refreshSession sends our refresh to the core: an UPDATE without a body,
// or a re-INVITE with our offer of the session as it is (same o= version
// when nothing changed). A change in flight is a refresh in itself, and
// no INVITE may cross another: ours waits a little.
func (c *Call) refreshSession() {
	l := c.core
	if c.ending {
		return
	}
	if c.change != nil || c.waiting != nil || l.oa.state != offerStable || c.inviteBusy(l) || c.inviteBusy(c.web) {
		c.arm(timerKey{timerRefresh, SideCore}, 64*sip.T1)
		return
	}
	method := sip.INVITE
	if l.allowsUpdate {
		method = sip.UPDATE
	}
	req := l.dlg.request(method, 0)
	req.AppendHeader(c.contact(l))
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	c.keepTimer(req)
	copyHeaders(l.invite, req, "Authorization", "Proxy-Authorization")
	if method == sip.INVITE {
		offer, err := c.media.OfferTo(mediabridge.LegCore)
		if err != nil {
			c.log.Warn("session refresh", zap.Error(err))
			c.arm(timerKey{timerRefresh, SideCore}, c.retryRefreshIn())
			return
		}
		setSDP(req, offer)
		l.oa.send(true, offer)
	}
	tx := &clientTx{leg: SideCore, purpose: txRefresh, req: req}
	l.watch(tx)
	if err := l.tr.send(c, tx); err != nil {
		delete(l.out, tx)
		c.refreshRefused(tx)
		c.arm(timerKey{timerRefresh, SideCore}, c.retryRefreshIn())
	}
	c.log.Debug("session refresh sent", zap.String("method", string(method)))
}

// retryRefreshIn: a refused refresh is tried again well before the core's
// interval runs out.
func (c *Call) retryRefreshIn() time.Duration {
	return max(c.timer.interval/8, 64*sip.T1)
}

// refreshRefused undoes the offer a refresh re-INVITE made.
func (c *Call) refreshRefused(tx *clientTx) {
	if tx.req.IsInvite() {
		c.media.Rollback(mediabridge.LegCore)
		c.core.oa.refuse()
	}
}

// onRefreshResponse takes the core's answer to our refresh.
func (c *Call) onRefreshResponse(tx *clientTx, res *sip.Response) {
	l := c.core
	code := res.StatusCode
	if c.pastFinal(l, tx, code) {
		return
	}
	c.settle(tx)
	if tx.req.IsInvite() {
		if code < 300 {
			c.ackReinvite(l, tx)
		} else {
			l.tr.ackFailure(tx.req, res)
		}
	}
	switch {
	case code < 300:
		c.agreeRefresh(res)
		c.log.Debug("session refreshed by us", zap.Duration("session_expires", c.timer.interval))
		if !tx.req.IsInvite() {
			return
		}
		if body := sdpBody(res); body != nil {
			// The core's answer may move its media, or hold.
			l.oa.receive(false, body)
			step, err := c.media.Answer(mediabridge.LegCore, body)
			switch {
			case err != nil:
				c.log.Warn("answer to our session refresh unusable", zap.Error(err))
				c.media.Rollback(mediabridge.LegCore)
				l.oa.refuse()
			case step.Offer != nil:
				c.startChange(&sessionChange{method: sip.INVITE, offer: step.Offer}, c.web)
			}
			return
		}
		c.refreshRefused(tx)
		return
	}
	c.refreshRefused(tx)
	switch {
	case code == 422 && minSE(res) > c.timer.interval:
		c.timer.interval = minSE(res)
		c.refreshSession()
	case code == 481 || code == 408:
		c.end(Cause{Reason: EndRejected, By: SideCore, Status: code})
	default:
		c.log.Info("session refresh refused", zap.Int("status", code))
		c.arm(timerKey{timerRefresh, SideCore}, c.retryRefreshIn())
	}
}

// onSessionExpired: the core stopped refreshing; the session is gone.
func (c *Call) onSessionExpired() {
	c.log.Warn("session timer expired without a refresh from the core", zap.Duration("session_expires", c.timer.interval))
	c.end(Cause{Reason: EndSessionExpired, By: SideCore, Status: 408})
}
