package presence

import (
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// notifyHeaders go with a NOTIFY from the notifier to the subscriber
// (with its Event).
var notifyHeaders = []string{"Subscription-State", "Content-Type"}

// unsolicitedHeaders go with a NOTIFY outside a dialog to the browsers.
var unsolicitedHeaders = []string{"Event", "Subscription-State", "Content-Type", "P-Asserted-Identity", "Date"}

// inDialog takes a request in one of our subscription dialogs, from the
// side it came on: the subscriber's SUBSCRIBE, the notifier's NOTIFY, an
// OPTIONS. A dialog we do not know gets 481 (RFC 3261 12.2.2).
func (r *Relay) inDialog(from side, req *sip.Request, reply func(*sip.Response)) {
	s, l := r.subs.lookup(from.key(callID(req), tagOf(req.To().Params)))
	if s == nil {
		reply(response(req, 481, "Call/Transaction Does Not Exist"))
		return
	}
	switch {
	case req.Method == sip.OPTIONS:
		reply(Capabilities(response(req, 200, "OK")))
		return
	case l == s.sub && req.Method == sip.SUBSCRIBE, l == s.ntf && req.Method == sip.NOTIFY:
	default:
		allow := "OPTIONS, NOTIFY" // what the notifier may send us
		if l == s.sub {
			allow = "OPTIONS, SUBSCRIBE"
		}
		res := response(req, 405, "Method Not Allowed")
		res.AppendHeader(sip.NewHeader("Allow", allow))
		reply(res)
		return
	}
	ev, bad := checkEvent(req)
	if bad != nil {
		reply(bad)
		return
	}
	if ev != s.event {
		reply(badEvent(req)) // another subscription in this dialog (RFC 6665 4.1.2.4 with id)
		return
	}
	var st subState
	if req.Method == sip.NOTIFY {
		var ok bool
		if st, ok = subscriptionStateOf(req); !ok {
			reply(response(req, 400, "Bad Subscription-State"))
			return
		}
	}
	r.subs.mu.Lock()
	if s.ended || !l.dlg.accept(req) {
		code, reason := 481, "Call/Transaction Does Not Exist"
		if !s.ended && l.dlg.remoteTag == tagOf(req.From().Params) {
			code, reason = 500, "CSeq Out of Order"
		}
		r.subs.mu.Unlock()
		reply(response(req, code, reason))
		return
	}
	r.subs.mu.Unlock()
	if req.Method == sip.SUBSCRIBE {
		r.refresh(s, req, reply)
		return
	}
	r.notify(s, req, st, reply)
}

// notify relays the notifier's NOTIFY to the subscriber in its dialog
// with us (RFC 6665 4.2.2) and answers with the subscriber's answer. A
// terminated state ends the subscription here; so does a 481 from the
// subscriber, which also ends it at the notifier when relayed.
func (r *Relay) notify(s *subscription, req *sip.Request, st subState, reply func(*sip.Response)) {
	r.subs.mu.Lock()
	switch {
	case st.value == "terminated":
		r.subs.mu.Unlock()
		r.end(s, "terminated")
	case st.hasExp && !s.unsubscribed && s.timer != nil:
		r.expireIn(s, st.expires) // the notifier may shorten it (RFC 6665 4.1.2.1)
		r.subs.mu.Unlock()
	default:
		r.subs.mu.Unlock()
	}
	ok := r.spawn(func() {
		ctx, cancel := r.txContext()
		defer cancel()
		select {
		case <-s.answered:
		case <-ctx.Done():
		}
		s.sub.sending.Lock()
		defer s.sub.sending.Unlock()
		r.subs.mu.Lock()
		out := s.sub.dlg.request(sip.NOTIFY)
		r.subs.mu.Unlock()
		out.AppendHeader(eventHeader(req))
		out.AppendHeader(contactHeader(s.sub.side.contact(s.id)))
		copyHeaders(req, out, notifyHeaders...)
		out.SetBody(req.Body())
		got, err := s.sub.side.send(ctx, out)
		res := answer(req, got, err, answerHeaders)
		if res.StatusCode == 481 {
			r.end(s, "subscriber gone")
		}
		r.log.Debug("notify relayed", r.fields(s, zap.String("state", st.value), zap.Int("status", res.StatusCode))...)
		reply(res)
	})
	if !ok {
		reply(busy(req))
	}
}

// endAtSubscriber tells the subscriber its subscription ended here (a
// final NOTIFY, RFC 6665 4.2.2), for one already dropped.
func (r *Relay) endAtSubscriber(s *subscription, reason string) {
	r.sendAfterEnd(s.sub, sip.NOTIFY, func(out *sip.Request) {
		out.AppendHeader(sip.NewHeader("Event", s.eventValue))
		out.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason="+reason))
		out.AppendHeader(contactHeader(s.sub.side.contact(s.id)))
	})
}

// unsolicited relays the core's NOTIFY outside any dialog — message
// waiting (RFC 3842) sent without a subscription — to the browser or
// browsers it is for, as a MESSAGE is.
func (r *Relay) unsolicited(req *sip.Request, reply func(*sip.Response)) {
	ev, err := eventOf(req)
	if err != nil {
		reply(response(req, 400, "Missing Event"))
		return
	}
	if ev.pkg != "message-summary" {
		reply(badEvent(req))
		return
	}
	if req.GetHeader("Event") == nil {
		req.AppendHeader(eventHeader(req)) // it came in the compact form
	}
	r.toDevices(req, reply, unsolicitedHeaders, false)
}
