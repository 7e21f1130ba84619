package presence

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// packages are the event packages the relay carries (AllowEvents).
var packages = map[string]bool{"presence": true, "dialog": true, "message-summary": true, "reg": true}

// event is an Event header: a package and its id parameter, which
// together name a subscription within a dialog (RFC 6665 8.2.1).
type event struct {
	pkg string // lower case
	id  string
}

func (e event) String() string {
	if e.id != "" {
		return e.pkg + ";id=" + e.id
	}
	return e.pkg
}

var (
	errNoEvent    = errors.New("no Event header")
	errBadExpires = errors.New("bad Expires")
)

// header is the first header of a name or its compact form.
func header(m sip.Message, name, compact string) sip.Header {
	if hs := m.GetHeaders(name); len(hs) > 0 {
		return hs[0]
	}
	if hs := m.GetHeaders(compact); compact != "" && len(hs) > 0 {
		return hs[0]
	}
	return nil
}

// eventOf reads a message's Event header (compact form o).
func eventOf(m sip.Message) (event, error) {
	h := header(m, "Event", "o")
	if h == nil {
		return event{}, errNoEvent
	}
	parts := strings.Split(h.Value(), ";")
	e := event{pkg: strings.ToLower(strings.TrimSpace(parts[0]))}
	if e.pkg == "" {
		return event{}, errNoEvent
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "id") {
			e.id = strings.TrimSpace(v)
		}
	}
	return e, nil
}

// eventHeader is a message's Event header as it is (packages define
// parameters of their own, RFC 4235 4.1), under its full name.
func eventHeader(m sip.Message) sip.Header {
	if h := header(m, "Event", "o"); h != nil {
		return sip.NewHeader("Event", h.Value())
	}
	return nil
}

// checkEvent answers a request whose Event is missing (400) or names a
// package the relay does not carry (489 with Allow-Events, RFC 6665
// 4.2.1.1 and 8.2.2); nil when it is fine.
func checkEvent(req *sip.Request) (event, *sip.Response) {
	e, err := eventOf(req)
	if err != nil {
		return e, response(req, 400, "Missing Event")
	}
	if !packages[e.pkg] {
		return e, badEvent(req)
	}
	return e, nil
}

// checkRequest is checkEvent, then a readable Expires (400 otherwise):
// what a SUBSCRIBE or PUBLISH must carry before anything is relayed.
func checkRequest(req *sip.Request) (event, *sip.Response) {
	e, bad := checkEvent(req)
	if bad == nil {
		if _, _, err := expiresOf(req); err != nil {
			bad = response(req, 400, "Bad Expires")
		}
	}
	return e, bad
}

func badEvent(req *sip.Request) *sip.Response {
	res := response(req, 489, "Bad Event")
	res.AppendHeader(sip.NewHeader("Allow-Events", AllowEvents))
	return res
}

// expiresOf reads an Expires header as delta-seconds (RFC 3261 20.19);
// one past 2^32-1 counts as that. ok is false without one.
func expiresOf(m sip.Message) (secs uint32, ok bool, err error) {
	h := header(m, "Expires", "")
	if h == nil {
		return 0, false, nil
	}
	return deltaSeconds(h.Value())
}

func deltaSeconds(v string) (uint32, bool, error) {
	v = strings.TrimSpace(v)
	n, err := strconv.ParseUint(v, 10, 32)
	switch {
	case err == nil:
		return uint32(n), true, nil
	case errors.Is(err, strconv.ErrRange) && v != "" && v[0] != '-' && v[0] != '+':
		return math.MaxUint32, true, nil
	}
	return 0, true, errBadExpires
}

// subState is a Subscription-State header (RFC 6665 8.2.3).
type subState struct {
	value   string // active, pending, terminated (lower case)
	reason  string
	expires uint32
	hasExp  bool
}

// subscriptionStateOf reads a NOTIFY's Subscription-State; false when it
// has none or it is unreadable.
func subscriptionStateOf(m sip.Message) (subState, bool) {
	h := header(m, "Subscription-State", "")
	if h == nil {
		return subState{}, false
	}
	parts := strings.Split(h.Value(), ";")
	st := subState{value: strings.ToLower(strings.TrimSpace(parts[0]))}
	if st.value == "" {
		return subState{}, false
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "reason":
			st.reason = strings.TrimSpace(v)
		case "expires":
			n, _, err := deltaSeconds(v)
			if err != nil {
				return subState{}, false
			}
			st.expires, st.hasExp = n, true
		}
	}
	return st, true
}
