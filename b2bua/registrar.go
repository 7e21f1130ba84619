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

	authtoken "github.com/imsgate/imsgate/internal/token"
	"github.com/imsgate/imsgate/presence"
)

// binding is one browser registration: an AoR reached over one WebSocket
// flow, mirrored at the core by a Contact of the gateway's own whose user part
// is the binding's token.
type binding struct {
	token   string // core-side Contact user; routes INVITEs back to this binding
	aor     sip.Uri
	flow    string            // WebSocket flow token
	contact sip.ContactHeader // the browser's own Contact (.invalid host)
	created time.Time

	mu sync.Mutex // guards what follows
	// Upstream registration state: one Call-ID and an increasing CSeq for the
	// binding's whole life (RFC 3261 10.2.4).
	callID  string
	fromTag string
	cseq    uint32
	// auth is the browser's last credentials, replayed to unregister when the
	// WebSocket closes (the browser is gone and cannot answer a challenge).
	auth []sip.Header
	// routes is the Service-Route the core returned (RFC 3608).
	routes []string
	// creds answer the core's challenges in token mode; nil in passthrough.
	creds   *authtoken.Identity
	regURI  sip.Uri
	expires time.Time
	active  bool // the core accepted it at least once
}

// maxQueuedRegisters bounds the REGISTERs of one flow waiting their turn.
const maxQueuedRegisters = 8

// registrar keeps the binding table, indexed by token, by flow and
// contact, and by flow; and runs each flow's REGISTERs one at a time, in
// the order the browser sent them.
type registrar struct {
	mu       sync.RWMutex
	byToken  map[string]*binding
	byFlowCt map[string]*binding // flow + "|" + browser contact URI
	byFlow   map[string]map[*binding]struct{}
	byAoR    map[string]map[*binding]struct{} // aorKey

	qmu    sync.Mutex
	queues map[string]*registerQueue
}

// registerQueue is one flow's REGISTERs in order; a worker runs while it
// is not empty.
type registerQueue struct {
	pending []*sip.Request
	flow    webFlow
}

func newRegistrar() *registrar {
	return &registrar{byToken: map[string]*binding{}, byFlowCt: map[string]*binding{},
		byFlow: map[string]map[*binding]struct{}{}, byAoR: map[string]map[*binding]struct{}{},
		queues: map[string]*registerQueue{}}
}

func flowContactKey(flow string, u sip.Uri) string {
	return flow + "|" + strings.ToLower(u.User+"@"+u.Host+":"+strconv.Itoa(u.Port))
}

// get returns the binding of a browser contact on a flow, creating it
// unless the flow holds max bindings already (limits.registrations_per_conn).
func (r *registrar) get(flow string, aor sip.Uri, ct *sip.ContactHeader, max int) (*binding, bool) {
	key := flowContactKey(flow, ct.Address)
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.byFlowCt[key]; ok {
		return b, true
	}
	if len(r.byFlow[flow]) >= max {
		return nil, false
	}
	b := &binding{token: token(20), aor: aor, flow: flow, contact: *ct.Clone(), created: time.Now(),
		callID: token(24), fromTag: token(12)}
	b.contact.Params = b.contact.Params.Clone()
	b.contact.Params.Remove("expires")
	r.byFlowCt[key] = b
	r.byToken[b.token] = b
	addTo(r.byFlow, flow, b)
	addTo(r.byAoR, aorKey(aor), b)
	return b, true
}

func aorKey(u sip.Uri) string { return strings.ToLower(u.User + "@" + u.Host) }

func addTo(index map[string]map[*binding]struct{}, key string, b *binding) {
	set := index[key]
	if set == nil {
		set = map[*binding]struct{}{}
		index[key] = set
	}
	set[b] = struct{}{}
}

func removeFrom(index map[string]map[*binding]struct{}, key string, b *binding) {
	if set := index[key]; set != nil {
		delete(set, b)
		if len(set) == 0 {
			delete(index, key)
		}
	}
}

// devicesOf returns the browsers registered for an AoR.
func (r *registrar) devicesOf(aor sip.Uri) []presence.Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []presence.Device
	for b := range r.byAoR[aorKey(aor)] {
		out = append(out, presence.Device{Flow: b.flow, Contact: *b.contact.Address.Clone()})
	}
	return out
}

func (r *registrar) remove(b *binding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(b)
}

func (r *registrar) removeLocked(b *binding) {
	if r.byToken[b.token] != b {
		return
	}
	delete(r.byToken, b.token)
	delete(r.byFlowCt, flowContactKey(b.flow, b.contact.Address))
	removeFrom(r.byFlow, b.flow, b)
	removeFrom(r.byAoR, aorKey(b.aor), b)
}

func (r *registrar) lookup(tok string) (*binding, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.byToken[tok]
	return b, ok
}

// identities are the AoRs registered on a flow now: its bindings the core
// accepted that have not expired (the sweep forgets those only later).
func (r *registrar) identities(flow string, now time.Time) []sip.Uri {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []sip.Uri
	for b := range r.byFlow[flow] {
		b.mu.Lock()
		if b.active && now.Before(b.expires) {
			out = append(out, b.aor)
		}
		b.mu.Unlock()
	}
	return out
}

// serviceRoute is the Service-Route of an AoR's registration on a flow,
// or on any flow when flow is empty.
func (r *registrar) serviceRoute(flow string, aor sip.Uri) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	set := r.byFlow[flow]
	if flow == "" {
		set = r.byAoR[aorKey(aor)]
	}
	for b := range set {
		if sameAoR(b.aor, aor) {
			b.mu.Lock()
			routes := b.routes
			b.mu.Unlock()
			if len(routes) > 0 {
				return routes
			}
		}
	}
	return nil
}

// claimedBinding finds the binding of aor, on another flow, that a
// REGISTER's Contact claims. On a parked flow (closed, its calls waiting)
// the same +sip.instance or the same URI claims it. On a flow still open
// only the same device does: the same URI, or the same +sip.instance and
// reg-id (RFC 5626 §6: a new flow of an instance replaces its old one).
// That is how a browser that reconnected before its old connection was
// seen to close (a NAT that forgot it, a handover) gets its calls back.
func (r *registrar) claimedBinding(aor sip.Uri, ct *sip.ContactHeader, flow string, parked func(flow string) bool) *binding {
	inst := instanceOf(ct)
	want := flowContactKey("", ct.Address)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for b := range r.byAoR[aorKey(aor)] {
		if b.flow == flow {
			continue
		}
		sameURI := flowContactKey("", b.contact.Address) == want
		sameInst := inst != "" && instanceOf(&b.contact) == inst
		if sameURI || sameInst && (parked(b.flow) || regIDOf(&b.contact) == regIDOf(ct)) {
			return b
		}
	}
	return nil
}

// move puts a binding on another flow; it returns the flow it was on, and
// false when the binding is no longer in the table.
func (r *registrar) move(b *binding, flow string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byToken[b.token] != b {
		return "", false
	}
	old := b.flow
	delete(r.byFlowCt, flowContactKey(old, b.contact.Address))
	removeFrom(r.byFlow, old, b)
	b.flow = flow
	r.byFlowCt[flowContactKey(flow, b.contact.Address)] = b
	addTo(r.byFlow, flow, b)
	return old, true
}

// flowOf is the flow a binding is on now (it moves on reconnection).
func (r *registrar) flowOf(b *binding) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return b.flow
}

// takeFlow removes and returns every binding of a closed flow.
func (r *registrar) takeFlow(flow string) []*binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.byFlow[flow]
	out := make([]*binding, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	for _, b := range out {
		r.removeLocked(b)
	}
	return out
}

// takeAoR removes and returns the bindings of an AoR on a flow.
func (r *registrar) takeAoR(flow string, aor sip.Uri) []*binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*binding
	for b := range r.byFlow[flow] {
		if sameURI(b.aor, aor) {
			out = append(out, b)
		}
	}
	for _, b := range out {
		r.removeLocked(b)
	}
	return out
}

// stale returns bindings past their expiry, and challenged ones the
// browser never completed (64·T1 after they were made).
func (r *registrar) stale(now time.Time) []*binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*binding
	for _, b := range r.byToken {
		b.mu.Lock()
		if (b.active && now.After(b.expires)) || (!b.active && now.Sub(b.created) > 64*sip.T1) {
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

// enqueue queues a browser REGISTER behind the flow's earlier ones; the
// flow's worker relays them one at a time, so they reach the core in order.
func (r *registrar) enqueue(g *Gateway, f webFlow, req *sip.Request, log *zap.Logger) {
	r.qmu.Lock()
	q := r.queues[f.Flow()]
	if q != nil && len(q.pending) >= maxQueuedRegisters {
		r.qmu.Unlock()
		res := response(req, 503, "Service Unavailable", token(10))
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
		g.replyWeb(f, res, log)
		return
	}
	start := q == nil
	if start {
		q = &registerQueue{flow: f}
		r.queues[f.Flow()] = q
	}
	q.pending = append(q.pending, req)
	r.qmu.Unlock()
	if start && !g.goOwned(func(ctx context.Context) { r.work(ctx, g, q) }) {
		r.dropFlowQueue(f.Flow())
		g.replyWeb(f, response(req, 503, "Service Unavailable", token(10)), log)
	}
}

// work relays a flow's queued REGISTERs until none is left.
func (r *registrar) work(ctx context.Context, g *Gateway, q *registerQueue) {
	for {
		r.qmu.Lock()
		if len(q.pending) == 0 || r.queues[q.flow.Flow()] != q {
			if r.queues[q.flow.Flow()] == q {
				delete(r.queues, q.flow.Flow())
			}
			r.qmu.Unlock()
			return
		}
		req := q.pending[0]
		q.pending = q.pending[1:]
		r.qmu.Unlock()
		g.handleRegister(ctx, q.flow, req)
	}
}

// dropFlowQueue forgets a closed flow's waiting REGISTERs.
func (r *registrar) dropFlowQueue(flow string) {
	r.qmu.Lock()
	delete(r.queues, flow)
	r.qmu.Unlock()
}

// sweepBindings forgets bindings the browser stopped refreshing (the
// core's copy expires at the same moment, so nothing is sent) and
// challenged ones never completed.
func (g *Gateway) sweepBindings(now time.Time) {
	for _, b := range g.reg.stale(now) {
		g.reg.remove(b)
		g.log.Info("binding expired", zap.String("aor", b.aor.String()), zap.String("binding", b.token))
	}
}

func (b *binding) String() string { return fmt.Sprintf("%s (%s)", b.aor.String(), b.token) }

func (g *Gateway) replyWeb(f webFlow, res *sip.Response, log *zap.Logger) {
	if err := f.WriteMessage(res); err != nil {
		log.Debug("write to browser failed", zap.Error(err))
	}
}
