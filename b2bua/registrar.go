package b2bua

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// binding is one browser registration: an AoR reached over one WebSocket
// flow, mirrored at the core by a Contact of the gateway's own whose user part
// is the binding's token.
type binding struct {
	token   string // core-side Contact user; routes INVITEs back to this binding
	aor     sip.Uri
	flow    string            // WebSocket flow token
	contact sip.ContactHeader // the browser's own Contact (.invalid host)

	mu sync.Mutex // serialises the upstream REGISTERs of this binding
	// Upstream registration state: one Call-ID and an increasing CSeq for the
	// binding's whole life (RFC 3261 10.2.4).
	callID  string
	fromTag string
	cseq    uint32
	// auth is the browser's last credentials, replayed to unregister when the
	// WebSocket closes (the browser is gone and cannot answer a challenge).
	auth     []sip.Header
	regURI   sip.Uri
	expires  time.Time
	active   bool // the core accepted it at least once
	removing bool
}

// registrar keeps the binding table.
type registrar struct {
	mu       sync.RWMutex
	byToken  map[string]*binding
	byFlowCt map[string]*binding // flow + "|" + browser contact URI
}

func newRegistrar() *registrar {
	return &registrar{byToken: map[string]*binding{}, byFlowCt: map[string]*binding{}}
}

func flowContactKey(flow string, u sip.Uri) string {
	return flow + "|" + strings.ToLower(u.User+"@"+u.Host+":"+strconv.Itoa(u.Port))
}

// get returns the binding of a browser contact on a flow, creating it.
func (r *registrar) get(flow string, aor sip.Uri, ct *sip.ContactHeader) *binding {
	key := flowContactKey(flow, ct.Address)
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.byFlowCt[key]; ok {
		return b
	}
	b := &binding{
		token:   token(20),
		aor:     aor,
		flow:    flow,
		contact: *ct.Clone(),
		callID:  token(24),
		fromTag: token(12),
		cseq:    0,
	}
	b.contact.Params = b.contact.Params.Clone()
	b.contact.Params.Remove("expires")
	r.byFlowCt[key] = b
	r.byToken[b.token] = b
	return b
}

func (r *registrar) remove(b *binding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byToken, b.token)
	delete(r.byFlowCt, flowContactKey(b.flow, b.contact.Address))
}

func (r *registrar) lookup(tok string) (*binding, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.byToken[tok]
	return b, ok
}

// ofFlow returns every binding on a flow, optionally only for one AoR.
func (r *registrar) ofFlow(flow string, aor *sip.Uri) []*binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*binding
	for _, b := range r.byToken {
		if b.flow == flow && (aor == nil || sameURI(b.aor, *aor)) {
			out = append(out, b)
		}
	}
	return out
}

// expired returns bindings past their expiry.
func (r *registrar) expired(now time.Time) []*binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*binding
	for _, b := range r.byToken {
		b.mu.Lock()
		if b.active && now.After(b.expires) {
			out = append(out, b)
		}
		b.mu.Unlock()
	}
	return out
}

func (r *registrar) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byToken)
}

// handleRegister relays a browser REGISTER to the core (digest pass-through)
// and answers the browser. It runs on its own goroutine.
func (g *Gateway) handleRegister(ctx context.Context, f webFlow, req *sip.Request) {
	log := g.log.With(zap.String("method", "REGISTER"), zap.String("flow", f.Flow()), zap.String("sip_call_id", callIDOf(req)))
	to := req.To()
	if to == nil {
		g.replyWeb(f, response(req, 400, "Bad Request", ""), log)
		return
	}
	aor := to.Address
	cts := contacts(req)
	if len(cts) == 0 {
		if h := req.GetHeader("Contact"); h != nil && strings.TrimSpace(h.Value()) == "*" {
			g.unregisterFlow(ctx, f.Flow(), &aor, log)
			g.replyWeb(f, response(req, 200, "OK", token(10)), log)
			return
		}
		// A query for bindings: answer locally, the core knows only ours.
		g.replyWeb(f, response(req, 200, "OK", token(10)), log)
		return
	}
	if len(cts) > 1 {
		g.replyWeb(f, response(req, 400, "Bad Request", ""), log)
		log.Warn("register with several contacts refused")
		return
	}
	ct := cts[0]
	want := expiresOf(req, ct, 3600)
	if max := int(g.cfg.Upstream.RegisterExpires / time.Second); max > 0 && want > max {
		want = max
	}
	b := g.reg.get(f.Flow(), aor, ct)
	log = log.With(zap.String("aor", aor.String()), zap.String("binding", b.token))

	res, err := g.registerUpstream(ctx, b, req, want)
	if err != nil {
		se := statusOf(err)
		log.Warn("register upstream failed", zap.Error(err))
		if !b.active {
			g.reg.remove(b)
		}
		g.replyWeb(f, response(req, se.Code, se.Reason, token(10)), log)
		return
	}
	out := response(req, res.StatusCode, res.Reason, token(10))
	copyHeaders(res, out, "WWW-Authenticate", "Proxy-Authenticate", "Service-Route", "P-Associated-URI", "Retry-After", "Min-Expires", "Warning")
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		granted := g.grantedExpiry(res, b, want)
		if granted == 0 {
			g.reg.remove(b)
			log.Info("unregistered")
		} else {
			b.mu.Lock()
			b.active = true
			b.expires = time.Now().Add(time.Duration(granted) * time.Second)
			b.mu.Unlock()
			c := b.contact.Clone()
			c.Params = c.Params.Clone()
			c.Params.Add("expires", strconv.Itoa(granted))
			out.AppendHeader(c)
			log.Info("registered", zap.Int("expires", granted))
		}
	case res.StatusCode == 401 || res.StatusCode == 407:
		log.Debug("register challenged", zap.Int("status", res.StatusCode))
	default:
		if !b.active {
			g.reg.remove(b)
		}
		log.Info("register refused by core", zap.Int("status", res.StatusCode))
	}
	g.replyWeb(f, out, log)
}

// grantedExpiry reads the expiry the core granted our Contact.
func (g *Gateway) grantedExpiry(res *sip.Response, b *binding, asked int) int {
	for _, c := range contacts(res) {
		if c.Address.User == b.token {
			return expiresOf(res, c, asked)
		}
	}
	return expiresOf(res, nil, asked)
}

// registerUpstream sends one REGISTER for a binding and returns the core's
// final response.
func (g *Gateway) registerUpstream(ctx context.Context, b *binding, web *sip.Request, expires int) (*sip.Response, error) {
	b.mu.Lock()
	b.cseq++
	b.regURI = web.Recipient
	b.auth = nil
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, h := range web.GetHeaders(name) {
			b.auth = append(b.auth, sip.NewHeader(h.Name(), h.Value()))
		}
	}
	// The browser's Supported (path, gruu, outbound) describes its own
	// flow, not the gateway's Contact: it stays on the web leg.
	req := g.buildRegister(b, expires)
	b.mu.Unlock()
	return g.core.request(ctx, req)
}

// buildRegister makes an upstream REGISTER for b; b.mu must be held.
func (g *Gateway) buildRegister(b *binding, expires int) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, *b.regURI.Clone())
	from := &sip.FromHeader{Address: *b.aor.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", b.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: *b.aor.Clone(), Params: sip.NewParams()})
	cid := sip.CallIDHeader(b.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: b.cseq, MethodName: sip.REGISTER})
	ct := g.core.contact(b.token)
	ct.Params.Add("expires", strconv.Itoa(expires))
	req.AppendHeader(ct)
	exp := sip.ExpiresHeader(expires)
	req.AppendHeader(&exp)
	for _, h := range b.auth {
		req.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
	}
	return req
}

// unregisterFlow removes the bindings of a flow at the core (Expires: 0),
// replaying the browser's last credentials. Used when a WebSocket closes.
func (g *Gateway) unregisterFlow(ctx context.Context, flow string, aor *sip.Uri, log *zap.Logger) {
	for _, b := range g.reg.ofFlow(flow, aor) {
		g.unregister(ctx, b, log)
	}
}

func (g *Gateway) unregister(ctx context.Context, b *binding, log *zap.Logger) {
	g.reg.remove(b)
	b.mu.Lock()
	if !b.active || b.removing {
		b.mu.Unlock()
		return
	}
	b.removing = true
	b.cseq++
	req := g.buildRegister(b, 0)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := g.core.request(ctx, req)
	l := log.With(zap.String("aor", b.aor.String()), zap.String("binding", b.token))
	switch {
	case err != nil:
		l.Warn("unregister at core failed; the core's binding will expire", zap.Error(err))
	case res.StatusCode >= 300:
		l.Warn("core refused unregister; its binding will expire", zap.Int("status", res.StatusCode))
	default:
		l.Info("unregistered at core")
	}
}

// sweepBindings forgets bindings the browser stopped refreshing; the core's
// copy expires at the same moment, so nothing is sent.
func (g *Gateway) sweepBindings(now time.Time) {
	for _, b := range g.reg.expired(now) {
		g.reg.remove(b)
		g.log.Info("binding expired", zap.String("aor", b.aor.String()), zap.String("binding", b.token))
	}
}

func (b *binding) String() string { return fmt.Sprintf("%s via %s", b.aor.String(), b.flow) }
