package presence

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// subscribeHeaders go with a SUBSCRIBE from the subscriber to the notifier
// (with its Event and Expires).
var subscribeHeaders = []string{"Accept", "Content-Type", "Authorization", "Proxy-Authorization", "P-Preferred-Identity"}

// subscribeAnswerHeaders go back to the subscriber with the final response.
var subscribeAnswerHeaders = append([]string{"Allow-Events"}, answerHeaders...)

// defaultExpires stands for the Expires a 2xx must carry and did not
// (RFC 6665 4.2.1.1), when the SUBSCRIBE named none either.
const defaultExpires = 3600

// subscribe takes a SUBSCRIBE outside a dialog from one side and subscribes
// on the other side, in a dialog of our own toward target (RFC 6665 4.1, 4.2).
func (r *Relay) subscribe(from side, req *sip.Request, to side, target sip.Uri, reply func(*sip.Response)) {
	ev, bad := checkRequest(req)
	if bad != nil {
		reply(bad)
		return
	}
	if ct := req.Contact(); ct == nil || ct.Address.Wildcard {
		reply(response(req, 400, "Missing Contact"))
		return
	}
	s := &subscription{id: r.newTag(16), event: ev, eventValue: eventHeader(req).Value(),
		sub: newLeg(from, answering(req, r.newTag(10))), ntf: newLeg(to, calling(req, target, r.newTag)),
		answered: make(chan struct{})}
	s.flow = from.flow() + to.flow()
	s.auth = credentials(req)
	if !r.subs.add(s, r.lim.limits.MaxSubscriptions) {
		reply(tooMany(req))
		return
	}
	// The notifier's NOTIFY may come before its 2xx: the table knows our
	// leg toward it from now on.
	if !r.spawn(func() { r.subscribeOut(s, req, reply, true) }) {
		r.subs.remove(s)
		reply(busy(req))
		close(s.answered)
	}
}

// subscribeFromCore takes the core's SUBSCRIBE to a registered browser: the
// device its Contact user names, else the AoR's first device (a
// subscription is one dialog with one device).
func (r *Relay) subscribeFromCore(req *sip.Request, reply func(*sip.Response)) {
	devices := r.devicesFor(req.Recipient)
	if len(devices) == 0 {
		reply(response(req, 404, "Not Found"))
		return
	}
	d := devices[0]
	r.subscribe(coreSide{r.core}, req, webSide{flows: r.flows, id: d.Flow}, d.Contact, reply)
}

// refresh relays the subscriber's SUBSCRIBE in the dialog: a refresh, or
// with Expires: 0 the end (RFC 6665 4.1.2.2, 4.1.2.3).
func (r *Relay) refresh(s *subscription, req *sip.Request, reply func(*sip.Response)) {
	if _, _, err := expiresOf(req); err != nil {
		reply(response(req, 400, "Bad Expires"))
		return
	}
	if !r.spawn(func() { r.subscribeOut(s, req, reply, false) }) {
		reply(busy(req))
	}
}

// subscribeOut sends the subscriber's SUBSCRIBE on the notifier's leg and
// answers the subscriber with what came back. It runs on a goroutine of
// the relay's, one request at a time per leg.
func (r *Relay) subscribeOut(s *subscription, req *sip.Request, reply func(*sip.Response), initial bool) {
	s.ntf.sending.Lock()
	defer s.ntf.sending.Unlock()
	r.subs.mu.Lock()
	if s.ended || (!initial && s.ntf.dlg.remoteTag == "") {
		r.subs.mu.Unlock()
		reply(response(req, 481, "Subscription Does Not Exist"))
		return
	}
	out := s.ntf.dlg.request(sip.SUBSCRIBE)
	if !initial {
		if auth := credentials(req); len(auth) > 0 {
			s.auth = auth
		}
	}
	r.subs.mu.Unlock()
	out.AppendHeader(eventHeader(req))
	copyHeaders(req, out, "Expires")
	out.AppendHeader(contactHeader(s.ntf.side.contact(s.id)))
	copyHeaders(req, out, subscribeHeaders...)
	out.SetBody(req.Body())

	ctx, cancel := r.txContext()
	got, err := s.ntf.side.send(ctx, out)
	cancel()
	reply(r.subscribed(s, req, got, err, initial))
	if initial {
		close(s.answered)
	}
}

// subscribed applies the notifier's final response (or its absence) to
// the subscription and makes the subscriber's: our To tag, the Expires the
// notifier granted, our Contact (RFC 6665 4.2.1.1). A failed initial
// SUBSCRIBE, and a 481 to any, end the subscription.
func (r *Relay) subscribed(s *subscription, req *sip.Request, got *sip.Response, err error, initial bool) *sip.Response {
	res := answer(req, got, err, subscribeAnswerHeaders)
	if to := res.To(); to != nil {
		to.Params.Remove("tag")
		to.Params.Add("tag", s.sub.dlg.localTag)
	}
	ok := err == nil && got != nil && got.StatusCode >= 200 && got.StatusCode < 300
	var granted uint32
	created := false
	if ok {
		granted = grantedExpires(got, req)
		r.subs.mu.Lock()
		if !s.ended {
			s.ntf.dlg.answered(got)
			r.expireIn(s, granted)
			created = initial && !s.created
			s.created = s.created || initial
		}
		r.subs.mu.Unlock()
	}

	if ok {
		res.AppendHeader(sip.NewHeader("Expires", strconv.FormatUint(uint64(granted), 10)))
		res.AppendHeader(contactHeader(s.sub.side.contact(s.id)))
		if created {
			r.log.Info("subscription created", r.fields(s, zap.Int("status", got.StatusCode), zap.Uint32("expires", granted))...)
		}
		return res
	}
	if initial || res.StatusCode == 481 {
		r.end(s, "refused "+strconv.Itoa(res.StatusCode))
	}
	return res
}

// grantedExpires is the 2xx's Expires, else the request's, else the
// default (RFC 6665 4.2.1.1 requires one in the 2xx).
func grantedExpires(got *sip.Response, req *sip.Request) uint32 {
	if n, ok, err := expiresOf(got); ok && err == nil {
		return n
	}
	if n, ok, err := expiresOf(req); ok && err == nil {
		return n
	}
	return defaultExpires
}

// endAtNotifier unsubscribes at the notifier (SUBSCRIBE Expires: 0, RFC
// 6665 4.1.2.3) for a subscription already dropped here, with the
// subscriber's last credentials; nobody waits for the answer.
func (r *Relay) endAtNotifier(s *subscription) {
	r.subs.mu.Lock()
	skip := s.unsubscribed || s.ntf.dlg.remoteTag == ""
	s.unsubscribed = true
	auth := s.auth
	r.subs.mu.Unlock()
	if skip {
		return
	}
	r.sendAfterEnd(s.ntf, sip.SUBSCRIBE, func(out *sip.Request) {
		out.AppendHeader(sip.NewHeader("Event", s.eventValue))
		out.AppendHeader(sip.NewHeader("Expires", "0"))
		out.AppendHeader(contactHeader(s.ntf.side.contact(s.id)))
		for _, h := range auth {
			out.AppendHeader(sip.NewHeader(h.name, h.value))
		}
	})
}

// sendAfterEnd sends our own last request on a leg of an ended
// subscription, off the caller's goroutine.
func (r *Relay) sendAfterEnd(l *leg, method sip.RequestMethod, fill func(*sip.Request)) {
	ok := r.spawn(func() {
		l.sending.Lock()
		defer l.sending.Unlock()
		r.subs.mu.Lock()
		out := l.dlg.request(method)
		r.subs.mu.Unlock()
		fill(out)
		ctx, cancel := r.txContext()
		defer cancel()
		res, err := l.side.send(ctx, out)
		if err != nil {
			r.log.Debug("final request of a subscription", zap.String("method", string(method)), zap.String("leg", l.side.String()), zap.Error(err))
		} else {
			r.log.Debug("final request of a subscription", zap.String("method", string(method)), zap.String("leg", l.side.String()), zap.Int("status", res.StatusCode))
		}
	})
	if !ok {
		r.log.Warn("subscription not ended at the far side: relay busy", zap.String("method", string(method)), zap.String("leg", l.side.String()))
	}
}

// credentials are a request's Authorization and Proxy-Authorization.
func credentials(req *sip.Request) []hdr {
	var out []hdr
	for _, n := range []string{"Authorization", "Proxy-Authorization"} {
		for _, h := range req.GetHeaders(n) {
			out = append(out, hdr{h.Name(), h.Value()})
		}
	}
	return out
}
