package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// The click-to-call pool: identities the gateway registers at the core
// itself (auth.credentials_file, click_to_call), under which a token with
// a click_to_call claim and no SIP identity of its own calls the
// destinations its token lists.

// poolRetry is how soon a pool identity the core did not accept is tried again.
const poolRetry = 30 * time.Second

// keepPoolRegistered registers every pool identity and refreshes each
// halfway through what the core granted, until the gateway stops.
func (g *Gateway) keepPoolRegistered(ctx context.Context) {
	var pool []*binding
	for _, id := range g.tokens.store.Pool() {
		var aor sip.Uri
		if err := sip.ParseUri(id.AoR, &aor); err != nil {
			continue // the store checked it; a file edited since is read again on the next start
		}
		id := id
		pool = append(pool, &binding{token: token(20), aor: aor, callID: token(24), fromTag: token(12),
			regURI: sip.Uri{Scheme: aor.Scheme, Host: aor.Host, Port: aor.Port}, creds: &id, created: time.Now()})
	}
	if len(pool) == 0 {
		return
	}
	want := int(g.cfg.Upstream.RegisterExpires / time.Second)
	if want <= 0 {
		want = 600
	}
	for {
		next := time.Duration(want) * time.Second / 2
		for _, b := range pool {
			if granted := g.registerPoolIdentity(ctx, b, want); granted > 0 {
				next = min(next, time.Duration(granted)*time.Second/2)
			} else {
				next = min(next, poolRetry)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// registerPoolIdentity sends one REGISTER for a pool identity and returns
// the expiry the core granted (0: not registered).
func (g *Gateway) registerPoolIdentity(ctx context.Context, b *binding, want int) int {
	b.mu.Lock()
	b.cseq++
	req := g.buildRegister(b, want)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	log := g.log.With(zap.String("identity", b.aor.String()))
	res, err := g.core.requestAs(ctx, req, b.creds, b.nextCSeq)
	switch {
	case err != nil:
		log.Warn("click-to-call identity not registered", zap.Error(err))
		return 0
	case res.StatusCode >= 300:
		log.Warn("click-to-call identity refused by core", zap.Int("status", res.StatusCode))
		return 0
	}
	granted := grantedExpiry(res, b, want)
	b.mu.Lock()
	wasActive := b.active
	b.active, b.expires = true, time.Now().Add(time.Duration(granted)*time.Second)
	b.mu.Unlock()
	if !wasActive {
		log.Info("click-to-call identity registered", zap.Int("expires", granted))
	}
	return granted
}
