package webua

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo/sip"
)

// UnregisterAll removes every binding of the AoR: `Contact: *` with
// `Expires: 0` (RFC 3261 §10.2.2), answering one challenge.
func (u *UA) UnregisterAll(ctx context.Context) (*sip.Response, error) {
	res, err := u.roundTrip(ctx, u.newWildcardRegister())
	if err != nil {
		return nil, fmt.Errorf("unregister all %s: %w", u.aor.String(), err)
	}
	if res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusProxyAuthRequired {
		return res, nil
	}
	retry := u.newWildcardRegister()
	auth, err := u.authorization(retry, res)
	if err != nil {
		return nil, err
	}
	retry.AppendHeader(auth)
	res, err = u.roundTrip(ctx, retry)
	if err != nil {
		return nil, fmt.Errorf("unregister all %s: %w", u.aor.String(), err)
	}
	return res, nil
}

func (u *UA) newWildcardRegister() *sip.Request {
	u.mu.Lock()
	u.regCSeq++
	cseq := u.regCSeq
	u.mu.Unlock()
	recipient := sip.Uri{Scheme: u.aor.Scheme, Host: u.aor.Host, Port: u.aor.Port}
	from := sip.FromHeader{Address: *u.aor.Clone(), Params: params("tag", u.regFromTag)}
	to := sip.ToHeader{Address: *u.aor.Clone(), Params: sip.NewParams()}
	req := u.newRequest(sip.REGISTER, recipient, from, to, u.regCallID, cseq)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	req.AppendHeader(sip.NewHeader("Expires", "0"))
	req.SetBody(nil)
	return req
}
