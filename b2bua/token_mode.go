package b2bua

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	authtoken "github.com/imsgate/imsgate/internal/token"
	"github.com/imsgate/imsgate/sipws"
)

// Token mode (auth.mode token): the web application's backend vouches for
// a browser with a signed token at the WebSocket upgrade; the token's
// subject stands for a SIP identity of the credential store, which the
// gateway registers and authenticates as, answering the core's challenges
// itself. A session lives as long as its token: at expiry its connection
// is closed, after auth.expiry_grace when it has calls.
type tokenMode struct {
	verifier *authtoken.Verifier
	store    *authtoken.Store
	grace    time.Duration
	pickPool atomic.Uint32 // round robin over the click-to-call pool

	mu       sync.Mutex
	sessions map[string]*tokenSession // by flow; one per open connection
}

// tokenSession is one connection's token and the identity it acts as.
type tokenSession struct {
	claims authtoken.Claims
	id     authtoken.Identity // the subject's, or a pool identity (click-to-call)
	aor    sip.Uri
	expiry *time.Timer
	// expired is set at the token's exp: nothing new is relayed from then.
	expired atomic.Bool
}

func newTokenMode(a configs.Auth) (*tokenMode, error) {
	secret, err := a.TokenSecret()
	if err != nil {
		return nil, err
	}
	v, err := authtoken.NewVerifier(authtoken.Config{Secret: secret, KeyFile: a.KeyFile, JWKSFile: a.JWKSFile,
		Audience: a.Audience, Issuer: a.Issuer, Leeway: a.Leeway})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	store, err := authtoken.OpenStore(a.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("auth.credentials_file: %w", err)
	}
	return &tokenMode{verifier: v, store: store, grace: a.ExpiryGrace, sessions: map[string]*tokenSession{}}, nil
}

// upgradeError refuses an upgrade whose token is good but that has no
// SIP identity to act as.
type upgradeError struct {
	status int
	why    string
}

func (e *upgradeError) Error() string { return e.why }
func (e *upgradeError) Status() int   { return e.status }

// admit checks the token of an upgrade (sipws.Admission) and returns the
// session it opens.
func (m *tokenMode) admit(r *http.Request) (any, error) {
	raw, ok := authtoken.FromRequest(r)
	if !ok {
		return nil, &authtoken.Error{Kind: authtoken.ErrMissing, Detail: "send it as Authorization: Bearer or the access_token query parameter"}
	}
	claims, err := m.verifier.Verify(raw, time.Now())
	if err != nil {
		return nil, err
	}
	s := &tokenSession{claims: claims}
	if claims.IsClickToCall() {
		pool := m.store.Pool()
		if len(pool) == 0 {
			return nil, &upgradeError{http.StatusServiceUnavailable, "click-to-call is not configured (no click_to_call identities)"}
		}
		s.id = pool[int(m.pickPool.Add(1)-1)%len(pool)]
	} else if s.id, ok = m.store.Lookup(claims.Subject); !ok {
		return nil, &upgradeError{http.StatusForbidden, "no SIP identity for this token's subject"}
	}
	if err := sip.ParseUri(s.id.AoR, &s.aor); err != nil {
		return nil, &upgradeError{http.StatusInternalServerError, "the subject's identity is not a SIP URI"}
	}
	return s, nil
}

// session is a flow's token session; nil in passthrough mode or for a
// flow that is gone.
func (m *tokenMode) session(flow string) *tokenSession {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[flow]
}

// ConnOpened starts a token session's clock (sipws.Opener).
func (g *Gateway) ConnOpened(c *sipws.Conn) { g.flowOpened(c.Flow(), c.Principal()) }

func (g *Gateway) flowOpened(flow string, principal any) {
	s, ok := principal.(*tokenSession)
	if !ok || g.tokens == nil {
		return
	}
	m := g.tokens
	m.mu.Lock()
	m.sessions[flow] = s
	s.expiry = time.AfterFunc(time.Until(s.claims.ExpiresAt.Time), func() { g.tokenExpired(flow, s) })
	m.mu.Unlock()
	g.log.Info("token session", zap.String("flow", flow), zap.String("subject", s.claims.Subject),
		zap.String("identity", s.id.AoR), zap.Bool("click_to_call", s.claims.IsClickToCall()),
		zap.Time("expires", s.claims.ExpiresAt.Time))
}

// flowEnded forgets a closed flow's session.
func (m *tokenMode) flowEnded(flow string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[flow]; s != nil {
		s.expiry.Stop()
		delete(m.sessions, flow)
	}
}

// expiredClose is the WebSocket close of a session whose token ran out
// (1008: policy violation).
const expiredClose = "token expired"

// tokenExpired runs at a token's exp: the connection closes now, or after
// auth.expiry_grace when it has calls (which then end with a BYE).
func (g *Gateway) tokenExpired(flow string, s *tokenSession) {
	s.expired.Store(true)
	calls := g.callsOfFlow(flow)
	log := g.log.With(zap.String("flow", flow), zap.String("subject", s.claims.Subject))
	if len(calls) == 0 || g.tokens.grace == 0 {
		log.Info("token expired: connection closed", zap.Int("calls", len(calls)))
		g.endTokenSession(flow, calls)
		return
	}
	log.Info("token expired: calls in progress continue for the grace period", zap.Int("calls", len(calls)),
		zap.Duration("grace", g.tokens.grace))
	g.tokens.mu.Lock()
	s.expiry = time.AfterFunc(g.tokens.grace, func() {
		log.Info("token grace over: calls ended, connection closed")
		g.endTokenSession(flow, g.callsOfFlow(flow))
	})
	g.tokens.mu.Unlock()
}

// endTokenSession ends a flow's calls (their BYEs go out over the flow
// first) and closes it.
func (g *Gateway) endTokenSession(flow string, calls []*Call) {
	for _, c := range calls {
		c.enqueue(event{kind: evTokenExpired})
	}
	g.goOwned(func(ctx context.Context) {
		for _, c := range calls {
			select {
			case <-c.done:
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return
			}
		}
		if f, ok := g.lookupFlow(flow); ok {
			if cl, ok := f.(interface{ Close(code int, reason string) }); ok {
				cl.Close(websocket.ClosePolicyViolation, expiredClose)
			}
		}
	})
}

// callsOfFlow lists the calls of a flow now.
func (g *Gateway) callsOfFlow(flow string) []*Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	calls := make([]*Call, 0, len(g.flowCalls[flow]))
	for c := range g.flowCalls[flow] {
		calls = append(calls, c)
	}
	return calls
}

// authorize checks a token session's out-of-dialog request: the token
// still valid, its scope, its identity (From and P-Preferred-Identity),
// the destinations it may reach.
func (s *tokenSession) authorize(req *sip.Request) refusal {
	if s.expired.Load() {
		return refusalTokenExpired
	}
	ability := authtoken.ScopeMessages
	if req.Method == sip.INVITE {
		ability = authtoken.ScopeCalls
	}
	switch {
	case req.Method == sip.REGISTER:
		if s.claims.IsClickToCall() || !sameAoR(req.To().Address, s.aor) {
			return refusalTokenIdentity
		}
		return refusalNone
	case s.claims.IsClickToCall() && req.Method != sip.INVITE:
		return refusalScope
	case !s.claims.Allows(ability):
		return refusalScope
	case !s.claims.MayReach(req.Recipient.User, req.Recipient.Host):
		return refusalDestination
	case s.claims.IsClickToCall():
		return refusalNone // it calls under the pool's identity, whatever its From says
	case !sameAoR(req.From().Address, s.aor):
		return refusalTokenIdentity
	}
	for _, u := range preferredIdentities(req) {
		if u == nil || !sameAoR(*u, s.aor) {
			return refusalPreferred
		}
	}
	return refusalNone
}

// credentials are what the gateway answers the core's challenges with for
// a flow: its token identity's; nil in passthrough (the browser answers).
func (g *Gateway) credentials(flow string) *authtoken.Identity {
	if s := g.tokens.session(flow); s != nil {
		id := s.id
		return &id
	}
	return nil
}

// byAoR is the identity of the store whose AoR is u; nil in passthrough
// or for an AoR the store does not hold.
func (m *tokenMode) byAoR(u sip.Uri) *authtoken.Identity {
	if m == nil {
		return nil
	}
	plain := sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port}
	if id, ok := m.store.ByAoR(plain.String()); ok {
		return &id
	}
	return nil
}

// answerChallenge sends the core leg's INVITE again with the credentials
// of the call's token identity; false when it cannot (another realm, or
// challenged maxChallenges times: the credentials are wrong).
func (c *Call) answerChallenge(b *leg, res *sip.Response) bool {
	if c.challenges == maxChallenges {
		return false
	}
	req, ok := answerChallenge(b.invite, res, c.creds)
	if !ok {
		return false
	}
	c.challenges++
	if !c.resendInvite(b, req) {
		return false
	}
	c.log.Debug("core challenged the INVITE; sent again with the token identity's credentials", zap.Int("status", res.StatusCode))
	return true
}

// refusedCredentials is what a token session's browser gets for a
// challenge the gateway could not answer: it holds no SIP credentials, so
// the challenge would mean nothing to it.
func refusedCredentials(res *sip.Response) *sip.Response {
	out := sip.NewResponse(403, "Forbidden")
	out.AppendHeader(sip.NewHeader("Warning", `399 imsgate "the core refused this identity's credentials"`))
	return out
}

// callerIdentity is the identity a browser's call is placed as: its token
// session's, or in passthrough its From (checked against its registrations).
func (g *Gateway) callerIdentity(flow string, inv *sip.Request) sip.Uri {
	if s := g.tokens.session(flow); s != nil {
		return s.aor
	}
	if ids := preferredIdentities(inv); len(ids) > 0 && ids[0] != nil {
		return *ids[0] // checked against the flow's registrations
	}
	return inv.From().Address
}

// Admission is the check of every WebSocket upgrade in token mode; nil in
// passthrough mode (the core authenticates browsers when they register).
func (g *Gateway) Admission() sipws.Admission {
	if g.tokens == nil {
		return nil
	}
	return g.tokens.admit
}

// TokenSubject checks an HTTP request's token as an upgrade's is checked
// and names its subject and expiry: who the TURN credentials the gateway
// hands out are for, and when they must end at the latest. Nil in
// passthrough mode.
func (g *Gateway) TokenSubject() func(r *http.Request) (subject string, expires time.Time, err error) {
	if g.tokens == nil {
		return nil
	}
	return func(r *http.Request) (string, time.Time, error) {
		p, err := g.tokens.admit(r)
		if err != nil {
			return "", time.Time{}, err
		}
		c := p.(*tokenSession).claims
		var exp time.Time
		if c.ExpiresAt != nil {
			exp = c.ExpiresAt.Time
		}
		return c.Subject, exp, nil
	}
}
