package webua

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo/sip"
)

// UnregisterAll removes every binding of the AoR: `Contact: *` with
// `Expires: 0` (RFC 3261 §10.2.2), answering one challenge.
func (u *UA) UnregisterAll(ctx context.Context) (*sip.Response, error) {
	res, err := u.registerWith(ctx, u.newWildcardRegister)
	if err != nil {
		return nil, fmt.Errorf("unregister all %s: %w", u.aor.String(), err)
	}
	return res, nil
}

func (u *UA) newWildcardRegister() *sip.Request {
	req := u.newRegisterBase()
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	req.AppendHeader(sip.NewHeader("Expires", "0"))
	req.SetBody(nil)
	return req
}
