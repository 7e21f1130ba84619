package b2bua

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// registerHeaders travel from the core's answer to a REGISTER back to the
// browser.
var registerHeaders = []string{"WWW-Authenticate", "Proxy-Authenticate", "Service-Route", "P-Associated-URI",
	"Retry-After", "Min-Expires", "Warning"}

// handleRegister relays a browser REGISTER to the core (digest pass-through)
// and answers the browser. It runs on the flow's register worker.
func (g *Gateway) handleRegister(ctx context.Context, f webFlow, req *sip.Request) {
	log := g.log.With(zap.String("method", "REGISTER"), zap.String("flow", f.Flow()), zap.String("sip_call_id", callIDOf(req)))
	aor := req.To().Address
	cts := contacts(req)
	switch {
	case len(cts) == 0:
		// A query for bindings: answer locally, the core knows only ours.
		g.replyWeb(f, response(req, 200, "OK", token(10)), log)
		return
	case len(cts) == 1 && cts[0].Address.Wildcard:
		g.unregisterAll(ctx, f, req, aor, log)
		return
	case len(cts) > 1:
		log.Warn("register with several contacts refused")
		g.replyWeb(f, response(req, 400, "Bad Request", ""), log)
		return
	}
	creds := g.credentials(f.Flow())
	if g.tokens != nil {
		if why := g.authorize(f.Flow(), req); why != refusalNone {
			g.refuseWeb(f, webServerTx(f, req), why, log)
			return
		}
	}
	ct := cts[0]
	want := expiresOf(req, ct, 3600)
	if max := int(g.cfg.Upstream.RegisterExpires / time.Second); max > 0 && want > max {
		want = max
	}
	// A reconnecting browser's binding is used as it is (the core sees a
	// refresh) and taken over once the core accepts the REGISTER.
	claimed := g.reg.claimedBinding(aor, ct, f.Flow(), g.isParked)
	b := claimed
	if b == nil {
		var ok bool
		if b, ok = g.reg.get(f.Flow(), aor, ct, g.cfg.Limits.RegistrationsPerConn); !ok {
			g.refuseWeb(f, webServerTx(f, req), refusalRegistrations, log)
			return
		}
	}
	if creds != nil {
		b.mu.Lock()
		b.creds = creds
		b.mu.Unlock()
	}
	log = log.With(zap.String("aor", aor.String()), zap.String("binding", b.token))

	res, err := g.registerUpstream(ctx, b, req, want)
	if err != nil {
		se := statusOf(err)
		log.Warn("register upstream failed", zap.Error(err))
		if !b.isActive() {
			g.reg.remove(b)
		}
		g.replyWeb(f, response(req, se.Code, se.Reason, token(10)), log)
		return
	}
	out := response(req, res.StatusCode, res.Reason, token(10))
	copyHeaders(res, out, g.webHeaders(registerHeaders)...)
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		granted := grantedExpiry(res, b, want)
		if granted == 0 {
			g.reg.remove(b)
			log.Info("unregistered")
			break
		}
		b.mu.Lock()
		b.active = true
		b.expires = time.Now().Add(time.Duration(granted) * time.Second)
		b.routes = serviceRoute(res)
		b.mu.Unlock()
		if claimed != nil {
			g.takeOver(f, claimed)
		}
		if cur, ok := g.reg.lookup(b.token); !ok || cur != b {
			// The flow closed while the REGISTER was out (and took its
			// bindings): take this one back too.
			g.unreg.add(b)
		} else if g.flowGone(f) {
			g.reg.remove(b)
			g.unreg.add(b)
		}
		c := b.contact.Clone()
		c.Params = c.Params.Clone()
		c.Params.Add("expires", strconv.Itoa(granted))
		out.AppendHeader(c)
		log.Info("registered", zap.Int("expires", granted))
	case challenged(res) && creds != nil:
		// The store's credentials did not do: the browser has none to try.
		if !b.isActive() {
			g.reg.remove(b)
		}
		log.Warn("core refused the credentials of the token's identity", zap.String("identity", creds.AoR))
		out = response(req, 403, "Forbidden", token(10))
		out.AppendHeader(sip.NewHeader("Warning", `399 imsgate "the core refused this identity's credentials"`))
	case challenged(res):
		log.Debug("register challenged", zap.Int("status", res.StatusCode))
	default:
		if !b.isActive() {
			g.reg.remove(b)
		}
		log.Info("register refused by core", zap.Int("status", res.StatusCode))
	}
	g.replyWeb(f, out, log)
}

// flowGone tells whether a browser's WebSocket has closed.
func (g *Gateway) flowGone(f webFlow) bool {
	select {
	case <-f.Done():
		return true
	default:
		return false
	}
}

func (b *binding) isActive() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active
}

// unregisterAll relays `Contact: *` (RFC 3261 10.2.2: remove every binding
// of the AoR) with the browser's credentials; once the core accepts it, the
// flow's bindings of that AoR are gone here too.
func (g *Gateway) unregisterAll(ctx context.Context, f webFlow, web *sip.Request, aor sip.Uri, log *zap.Logger) {
	if expiresOf(web, nil, -1) != 0 {
		g.replyWeb(f, response(web, 400, "Bad Request", ""), log)
		return
	}
	req := sip.NewRequest(sip.REGISTER, *web.Recipient.Clone())
	from := &sip.FromHeader{Address: *aor.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", tagOf(web.From().Params))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: *aor.Clone(), Params: sip.NewParams()})
	req.AppendHeader(sip.HeaderClone(web.CallID()))
	seq, _ := cseqOf(web)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.REGISTER})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	exp := sip.ExpiresHeader(0)
	req.AppendHeader(&exp)
	copyHeaders(web, req, "Authorization", "Proxy-Authorization")
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	res, err := g.core.request(ctx, req)
	if err != nil {
		se := statusOf(err)
		log.Warn("unregister-all upstream failed", zap.Error(err))
		g.replyWeb(f, response(web, se.Code, se.Reason, token(10)), log)
		return
	}
	out := response(web, res.StatusCode, res.Reason, token(10))
	copyHeaders(res, out, registerHeaders...)
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		n := len(g.reg.takeAoR(f.Flow(), aor))
		log.Info("unregistered all contacts", zap.String("aor", aor.String()), zap.Int("bindings", n))
	}
	g.replyWeb(f, out, log)
}

// grantedExpiry reads the expiry the core granted our Contact.
func grantedExpiry(res *sip.Response, b *binding, asked int) int {
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
			if b.creds == nil { // a token session's browser holds no SIP credentials
				b.auth = append(b.auth, sip.NewHeader(h.Name(), h.Value()))
			}
		}
	}
	// The browser's Supported (path, gruu, outbound) describes its own
	// flow, not the gateway's Contact: it stays on the web leg.
	req := g.buildRegister(b, expires)
	creds := b.creds
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	return g.core.requestAs(ctx, req, creds, b.nextCSeq)
}

// nextCSeq takes the binding's next CSeq, for a REGISTER sent again with
// credentials.
func (b *binding) nextCSeq() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cseq++
	return b.cseq
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
	g.addPath(req, b)
	g.accessNetwork(req)
	return req
}

// unregister removes a binding at the core (Expires: 0), replaying the
// browser's last credentials: the browser is gone and cannot answer a new
// challenge, so a core that challenges keeps our Contact until it expires
// (at most upstream.register_expires); calls to it meanwhile get 480.
func (g *Gateway) unregister(ctx context.Context, b *binding) {
	b.mu.Lock()
	if !b.active {
		b.mu.Unlock()
		return
	}
	b.active = false
	b.cseq++
	req := g.buildRegister(b, 0)
	creds := b.creds
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	res, err := g.core.requestAs(ctx, req, creds, b.nextCSeq)
	l := g.log.With(zap.String("aor", b.aor.String()), zap.String("binding", b.token), zap.String("flow", g.reg.flowOf(b)))
	switch {
	case err != nil:
		l.Warn("unregister at core failed; the core's binding will expire", zap.Error(err))
	case res.StatusCode >= 300:
		l.Warn("core refused unregister; its binding will expire", zap.Int("status", res.StatusCode))
	default:
		l.Info("unregistered at core")
	}
}

// unregisterQueue paces the de-registrations of closed flows
// (upstream.unregister_rate): a mass disconnect reaches the core as a
// steady stream, not as one burst.
type unregisterQueue struct {
	g       *Gateway
	limiter *rate.Limiter
	mu      sync.Mutex
	pending []*binding
	wake    chan struct{}
}

func newUnregisterQueue(g *Gateway, perSecond float64) *unregisterQueue {
	if perSecond <= 0 {
		perSecond = 50
	}
	return &unregisterQueue{g: g, limiter: rate.NewLimiter(rate.Limit(perSecond), 1), wake: make(chan struct{}, 1)}
}

func (q *unregisterQueue) add(b *binding) {
	if !b.isActive() {
		return
	}
	q.mu.Lock()
	q.pending = append(q.pending, b)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *unregisterQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// run sends the queued de-registrations at the configured rate, each on
// its own goroutine so a slow core does not slow the pace.
func (q *unregisterQueue) run(ctx context.Context) {
	for {
		q.mu.Lock()
		var b *binding
		if len(q.pending) > 0 {
			b = q.pending[0]
			q.pending[0] = nil
			q.pending = q.pending[1:]
		}
		q.mu.Unlock()
		if b == nil {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		if err := q.limiter.Wait(ctx); err != nil {
			return
		}
		q.g.goOwned(func(ctx context.Context) { q.g.unregister(context.WithoutCancel(ctx), b) })
	}
}
