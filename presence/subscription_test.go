package presence

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// direction is who subscribes to whom: the relay is the same code either way.
type direction struct {
	name   string
	subWeb bool   // the subscriber is the browser (else the core)
	uri    string // the initial SUBSCRIBE's Request-URI
}

var directions = []direction{
	{"browser subscribes at the core", true, "sip:bob@ims.test"},
	{"core subscribes to a browser", false, "sip:dev1@gw.test"},
}

// ourHost is the host of our Contact on a side.
func ourHost(web bool) string {
	if web {
		return "imsgate.invalid"
	}
	return "gw.test"
}

// opened subscribes per d and returns the SUBSCRIBE, what the notifier
// got, and the subscriber's 2xx.
func (g *rig) opened(d direction, callID string, extra ...string) (*sip.Request, sent, *sip.Response) {
	g.t.Helper()
	req := subscribeReq(g.t, d.uri, callID, append([]string{"Event: presence;id=7", "Expires: 600"}, extra...)...)
	ch := g.send(d.subWeb, req)
	out := g.next(!d.subWeb)
	res := await(g.t, ch)
	if res.StatusCode != 200 {
		g.t.Fatalf("SUBSCRIBE got %d", res.StatusCode)
	}
	return req, out, res
}

func TestSubscribeBothWays(t *testing.T) {
	for _, d := range directions {
		t.Run(d.name, func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			notifier := g.core
			if !d.subWeb {
				notifier = g.web
			}
			notifier.setAnswer(func(s sent) (*sip.Response, error) {
				res := okAnswer(s.req)
				res.AppendHeader(&sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: "p1.far.test", UriParams: sip.HeaderParams{{K: "lr", V: ""}}}})
				res.AppendHeader(&sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: "p2.far.test", UriParams: sip.HeaderParams{{K: "lr", V: ""}}}})
				return res, nil
			})
			req, out, res := g.opened(d, "sub-1", "Accept: application/pidf+xml", `Authorization: Digest username="alice"`)

			// The notifier's side: a dialog of ours, the same parties.
			o := out.req
			switch {
			case o.Method != sip.SUBSCRIBE, o.CallID().Value() == "sub-1", tagOf(o.From().Params) == "s1", o.To().Params.Has("tag"):
				t.Fatalf("notifier got\n%s", o)
			case o.From().Address.User != "alice" || o.To().Address.User != "bob":
				t.Fatalf("parties changed:\n%s", o)
			case o.GetHeader("Event").Value() != "presence;id=7", o.GetHeader("Expires").Value() != "600",
				o.GetHeader("Accept") == nil, o.GetHeader("Authorization") == nil:
				t.Fatalf("headers not copied:\n%s", o)
			case o.Contact().Address.Host != ourHost(!d.subWeb):
				t.Fatalf("our Contact toward the notifier is %s", o.Contact().Address.String())
			}
			if !d.subWeb && (out.flow != "f1" || o.Recipient.User != "dev1" || o.Recipient.Host != "b1.invalid") {
				t.Fatalf("SUBSCRIBE to the browser went to %s on %q", o.Recipient.String(), out.flow)
			}
			// The subscriber's 2xx: our tag, the granted Expires, our Contact.
			if tagOf(res.To().Params) == "" || res.GetHeader("Expires").Value() != "600" ||
				res.Contact() == nil || res.Contact().Address.Host != ourHost(d.subWeb) {
				t.Fatalf("subscriber got\n%s", res)
			}

			// A NOTIFY from the notifier reaches the subscriber in its dialog.
			n := notifyFrom(t, o, 1, "active;expires=600", "<presence/>")
			if nres := g.do(!d.subWeb, n); nres.StatusCode != 200 {
				t.Fatalf("NOTIFY got %d", nres.StatusCode)
			}
			got := g.next(d.subWeb).req
			switch {
			case got.Method != sip.NOTIFY, got.Recipient.String() != req.Contact().Address.String():
				t.Fatalf("subscriber got\n%s", got)
			case got.CallID().Value() != "sub-1", tagOf(got.To().Params) != "s1", tagOf(got.From().Params) != tagOf(res.To().Params):
				t.Fatalf("NOTIFY not in the subscriber's dialog:\n%s", got)
			case got.GetHeader("Event").Value() != "presence;id=7", got.GetHeader("Subscription-State").Value() != "active;expires=600",
				string(got.Body()) != "<presence/>", got.GetHeader("Content-Type") == nil, got.Contact() == nil:
				t.Fatalf("NOTIFY lost what it carries:\n%s", got)
			}

			// A refresh goes in the notifier's dialog, along its route set,
			// to the target its NOTIFY's Contact last named.
			rres := g.do(d.subWeb, refreshOf(t, req, res, 2, "300"))
			o2 := g.next(!d.subWeb).req
			routes := o2.GetHeaders("Route")
			switch {
			case rres.StatusCode != 200 || rres.GetHeader("Expires").Value() != "300":
				t.Fatalf("refresh got\n%s", rres)
			case o2.Recipient.Host != "peer.invalid", tagOf(o2.To().Params) != "far", o2.CallID().Value() != o.CallID().Value():
				t.Fatalf("refresh not in the notifier's dialog:\n%s", o2)
			case o2.CSeq().SeqNo != 2, o2.GetHeader("Expires").Value() != "300":
				t.Fatalf("refresh:\n%s", o2)
			case len(routes) != 2 || !strings.Contains(routes[0].Value(), "p2.far.test"):
				t.Fatalf("route set: %v", routes)
			}

			// Expires: 0 ends it: the notifier's final NOTIFY still comes
			// through, and then nothing is left.
			if ures := g.do(d.subWeb, refreshOf(t, req, res, 3, "0")); ures.StatusCode != 200 {
				t.Fatalf("unsubscribe got %d", ures.StatusCode)
			}
			if o3 := g.next(!d.subWeb).req; o3.GetHeader("Expires").Value() != "0" || o3.CSeq().SeqNo != 3 {
				t.Fatalf("unsubscribe:\n%s", o3)
			}
			g.waitCount(1)
			if nres := g.do(!d.subWeb, notifyFrom(t, o, 2, "terminated;reason=timeout", "")); nres.StatusCode != 200 {
				t.Fatalf("final NOTIFY got %d", nres.StatusCode)
			}
			if last := g.next(d.subWeb).req; !strings.HasPrefix(last.GetHeader("Subscription-State").Value(), "terminated") {
				t.Fatalf("subscriber got\n%s", last)
			}
			g.waitCount(0)
			if nres := g.do(!d.subWeb, notifyFrom(t, o, 3, "active", "")); nres.StatusCode != 481 {
				t.Fatalf("NOTIFY after the end got %d, want 481", nres.StatusCode)
			}
		})
	}
}

// TestNotifyBeforeOK: the notifier's NOTIFY may overtake its 2xx (RFC 6665
// 4.1.2.4); it reaches the subscriber after the 2xx, in the dialog the 2xx
// confirms.
func TestNotifyBeforeOK(t *testing.T) {
	for _, d := range directions {
		t.Run(d.name, func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			notifier := g.core
			if !d.subWeb {
				notifier = g.web
			}
			release := make(chan struct{})
			notifier.setAnswer(func(s sent) (*sip.Response, error) {
				if s.req.Method == sip.SUBSCRIBE && !s.req.To().Params.Has("tag") {
					<-release
				}
				return okAnswer(s.req), nil
			})
			req := subscribeReq(t, d.uri, "early-1", "Event: dialog", "Expires: 60")
			ch := g.send(d.subWeb, req)
			o := g.next(!d.subWeb).req
			// The NOTIFY is taken at once but reaches the subscriber only
			// after the 2xx it overtook.
			nch := g.send(!d.subWeb, notifyFrom(t, o, 1, "pending", ""))
			g.quiet(d.subWeb, 50*time.Millisecond)
			close(release)
			res := await(t, ch)
			if res.StatusCode != 200 || res.GetHeader("Expires").Value() != "60" {
				t.Fatalf("SUBSCRIBE got\n%s", res)
			}
			if got := g.next(d.subWeb).req; got.Method != sip.NOTIFY || got.CallID().Value() != "early-1" {
				t.Fatalf("subscriber got\n%s", got)
			}
			if nres := await(t, nch); nres.StatusCode != 200 {
				t.Fatalf("early NOTIFY got %d", nres.StatusCode)
			}
			g.do(d.subWeb, refreshOf(t, req, res, 2, "60"))
			if o2 := g.next(!d.subWeb).req; tagOf(o2.To().Params) != "far" {
				t.Fatalf("refresh:\n%s", o2)
			}
		})
	}
}

// TestExpiryEndsAtNotifier: a subscription its subscriber stops refreshing
// is ended at the notifier when it expires, and dropped.
func TestExpiryEndsAtNotifier(t *testing.T) {
	for _, d := range directions {
		t.Run(d.name, func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			req := subscribeReq(t, d.uri, "exp-1", "Event: message-summary", "Expires: 40") // 40 ms here
			res := await(t, g.send(d.subWeb, req))
			o := g.next(!d.subWeb).req
			if res.StatusCode != 200 {
				t.Fatalf("SUBSCRIBE got %d", res.StatusCode)
			}
			end := g.next(!d.subWeb).req
			if end.Method != sip.SUBSCRIBE || end.GetHeader("Expires").Value() != "0" || tagOf(end.To().Params) != "far" ||
				end.CallID().Value() != o.CallID().Value() {
				t.Fatalf("at expiry the notifier got\n%s", end)
			}
			g.waitCount(0)
		})
	}
}

// TestForgetEndsSubscriptions: a closed flow's subscriptions end at the
// core, either way: its own with SUBSCRIBE Expires: 0, the core's toward
// it with a final NOTIFY. Another flow's stay.
func TestForgetEndsSubscriptions(t *testing.T) {
	g := newRig(t, DefaultLimits)
	g.opened(directions[0], "mine-1")
	g.opened(directions[1], "core-1")
	other := make(chan *sip.Response, 1)
	g.r.FromWeb("f2", subscribeReq(t, "sip:carol@ims.test", "other-1", "Event: presence", "Expires: 600"),
		func(res *sip.Response) { other <- res })
	g.next(false)
	await(t, other)
	g.waitCount(3)

	g.r.Forget("f1")
	got := map[sip.RequestMethod]*sip.Request{}
	for range 2 {
		s := g.next(false)
		got[s.req.Method] = s.req
	}
	if s := got[sip.SUBSCRIBE]; s == nil || s.GetHeader("Expires").Value() != "0" || tagOf(s.To().Params) != "far" {
		t.Fatalf("the browser's subscription was not ended at the core: %v", s)
	}
	if n := got[sip.NOTIFY]; n == nil || n.GetHeader("Subscription-State").Value() != "terminated;reason=deactivated" ||
		n.CallID().Value() != "core-1" || tagOf(n.To().Params) != "s1" {
		t.Fatalf("the core's subscription was not ended: %v", got[sip.NOTIFY])
	}
	g.waitCount(1)
	g.quiet(false, 50*time.Millisecond)
}

// TestSubscriptionEnds: what ends a subscription early, and what is refused.
func TestSubscriptionEnds(t *testing.T) {
	for _, d := range directions {
		t.Run(d.name+": subscriber answers 481", func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			_, out, _ := g.opened(d, "gone-1")
			subscriber := g.web
			if !d.subWeb {
				subscriber = g.core
			}
			subscriber.setAnswer(func(s sent) (*sip.Response, error) {
				return sip.NewResponseFromRequest(s.req, 481, "Gone", nil), nil
			})
			if nres := g.do(!d.subWeb, notifyFrom(t, out.req, 1, "active", "")); nres.StatusCode != 481 {
				t.Fatalf("the notifier got %d, want the subscriber's 481", nres.StatusCode)
			}
			g.waitCount(0)
		})
		t.Run(d.name+": another fork's NOTIFY", func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			_, out, _ := g.opened(d, "fork-1")
			n := notifyFrom(t, out.req, 1, "active", "")
			n.From().Params.Remove("tag")
			n.From().Params.Add("tag", "fork2")
			if nres := g.do(!d.subWeb, n); nres.StatusCode != 481 {
				t.Fatalf("got %d, want 481", nres.StatusCode)
			}
			g.waitCount(1)
		})
		t.Run(d.name+": NOTIFY for another event", func(t *testing.T) {
			g := newRig(t, DefaultLimits)
			_, out, _ := g.opened(d, "ev-1")
			n := notifyFrom(t, out.req, 1, "active", "")
			n.RemoveHeader("Event")
			n.AppendHeader(sip.NewHeader("Event", "presence;id=8"))
			if nres := g.do(!d.subWeb, n); nres.StatusCode != 489 {
				t.Fatalf("got %d, want 489", nres.StatusCode)
			}
		})
	}
}
