package democore

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// maxExpires caps a registration's lifetime.
const maxExpires = 3600 * time.Second

// defaultExpires applies when the REGISTER names no expiry (RFC 3261 §10.2.1.1
// leaves it to the registrar).
const defaultExpires = 3600 * time.Second

// Binding is one registered Contact of an AoR.
type Binding struct {
	// Contact is the Contact URI as registered.
	Contact string
	// Expires is the time left.
	Expires time.Duration
	// CallID and CSeq are from the REGISTER that last refreshed it.
	CallID string
	CSeq   uint32
}

type binding struct {
	contact sip.Uri
	params  sip.HeaderParams
	expires time.Time
	callID  string
	cseq    uint32
	// order keeps bindings in registration order.
	order uint64
}

// Bindings returns the unexpired bindings of aor, e.g. "sip:alice@imsgate.test",
// oldest first.
func (c *Core) Bindings(aor string) []Binding {
	u, err := parseAoR(aor)
	if err != nil {
		return nil
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	bs := c.liveBindingsLocked(aorKey(u), now)
	out := make([]Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, Binding{Contact: b.contact.String(), Expires: b.expires.Sub(now), CallID: b.callID, CSeq: b.cseq})
	}
	return out
}

// liveBindingsLocked drops expired bindings of key and returns the rest in order.
func (c *Core) liveBindingsLocked(key string, now time.Time) []*binding {
	set := c.bindings[key]
	out := make([]*binding, 0, len(set))
	for k, b := range set {
		if !b.expires.After(now) {
			delete(set, k)
			continue
		}
		out = append(out, b)
	}
	if len(set) == 0 {
		delete(c.bindings, key)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

// userRegistered reports whether any AoR with this user part has a binding.
func (c *Core) userRegistered(user string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.bindings {
		if len(c.liveBindingsLocked(key, now)) > 0 && userOfKey(key) == user {
			return true
		}
	}
	return false
}

func userOfKey(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == ':' {
			key = key[i+1:]
			break
		}
	}
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '@' {
			return key[:i]
		}
	}
	return key
}

// onRegister implements the registrar (RFC 3261 §10.3).
func (c *Core) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	to := req.To()
	cseq := req.CSeq()
	callID := req.CallID()
	if to == nil || cseq == nil || callID == nil || to.Address.User == "" {
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	aor := aorKey(to.Address)
	log := c.log.With(zap.String("aor", aor), zap.String("sip_call_id", callID.Value()))

	if c.authRequired() {
		switch r := c.authenticate(req, to.Address.User); r {
		case authOK:
		case authChallengeStale:
			c.respond(tx, c.challenge(req, true))
			return
		case authForbidden:
			log.Warn("register forbidden", zap.String("reason", "credentials of another user"))
			c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil))
			return
		default:
			c.respond(tx, c.challenge(req, false))
			return
		}
	}

	contacts, err := parseContacts(req)
	if err != nil {
		log.Warn("register bad contact", zap.Error(err))
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Contact", nil))
		return
	}
	headerExpires, hasHeaderExpires, err := expiresHeader(req)
	if err != nil {
		c.respond(tx, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Expires", nil))
		return
	}

	status, reason := c.applyRegister(aor, contacts, headerExpires, hasHeaderExpires, callID.Value(), cseq.SeqNo)
	if status != sip.StatusOK {
		log.Warn("register rejected", zap.Int("status", status), zap.String("reason", reason))
		c.respond(tx, sip.NewResponseFromRequest(req, status, reason, nil))
		return
	}

	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	now := time.Now()
	c.mu.Lock()
	live := c.liveBindingsLocked(aor, now)
	for _, b := range live {
		params := sip.HeaderParams{}
		for _, kv := range b.params {
			if kv.K != "expires" {
				params = append(params, kv)
			}
		}
		secs := int(b.expires.Sub(now).Round(time.Second) / time.Second)
		params = append(params, sip.HeaderKV{K: "expires", V: strconv.Itoa(secs)})
		res.AppendHeader(&sip.ContactHeader{Address: *b.contact.Clone(), Params: params})
	}
	c.mu.Unlock()
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	log.Debug("register ok", zap.Int("bindings", len(live)))
	c.respond(tx, res)
}

// applyRegister updates the bindings of aor; it returns the status to send.
func (c *Core) applyRegister(aor string, contacts []contactAddr, headerExpires time.Duration, hasHeaderExpires bool, callID string, cseq uint32) (int, string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ca := range contacts {
		if ca.wildcard {
			// RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
			if len(contacts) != 1 || !hasHeaderExpires || headerExpires != 0 {
				return sip.StatusBadRequest, "Invalid Wildcard"
			}
			for _, b := range c.bindings[aor] {
				if b.callID == callID && cseq <= b.cseq {
					return sip.StatusBadRequest, "Out Of Order"
				}
			}
			delete(c.bindings, aor)
			return sip.StatusOK, "OK"
		}
	}
	set := c.bindings[aor]
	for _, ca := range contacts {
		expires := defaultExpires
		if hasHeaderExpires {
			expires = headerExpires
		}
		if v, ok := ca.params.Get("expires"); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return sip.StatusBadRequest, "Bad Contact Expires"
			}
			expires = time.Duration(n) * time.Second
		}
		expires = min(expires, maxExpires)
		key := ca.uri.String()
		old := set[key]
		// RFC 3261 §10.3 step 7: same Call-ID needs a higher CSeq.
		if old != nil && old.callID == callID && cseq <= old.cseq {
			return sip.StatusBadRequest, "Out Of Order"
		}
		if expires == 0 {
			delete(set, key)
			continue
		}
		if set == nil {
			set = make(map[string]*binding)
			c.bindings[aor] = set
		}
		b := &binding{contact: ca.uri, params: ca.params, expires: now.Add(expires), callID: callID, cseq: cseq}
		if old != nil {
			b.order = old.order
		} else {
			c.bindingSeq++
			b.order = c.bindingSeq
		}
		set[key] = b
	}
	if len(set) == 0 {
		delete(c.bindings, aor)
	}
	return sip.StatusOK, "OK"
}

// expiresHeader reads the Expires header, if any.
func expiresHeader(req *sip.Request) (time.Duration, bool, error) {
	h := req.GetHeader("Expires")
	if h == nil {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(h.Value(), 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("parse expires %q: %w", h.Value(), err)
	}
	return time.Duration(n) * time.Second, true, nil
}
