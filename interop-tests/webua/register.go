package webua

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Register binds our .invalid Contact to the AoR. A 401 or 407 is answered
// once with digest credentials; the final response is returned whatever its
// status, an error only when none arrived.
func (u *UA) Register(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	res, err := u.register(ctx, expires)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", u.aor.String(), err)
	}
	return res, nil
}

// Unregister removes our binding (expires=0, RFC 3261 §10.2.2).
func (u *UA) Unregister(ctx context.Context) (*sip.Response, error) {
	res, err := u.register(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("unregister %s: %w", u.aor.String(), err)
	}
	return res, nil
}

func (u *UA) register(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	return u.registerWith(ctx, func() *sip.Request { return u.newRegister(expires) })
}

// registerWith sends the REGISTER build makes and answers one challenge
// with a fresh one.
func (u *UA) registerWith(ctx context.Context, build func() *sip.Request) (*sip.Response, error) {
	req := build()
	res, err := u.roundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusProxyAuthRequired {
		return res, nil
	}
	auth, err := u.authorization(req, res)
	if err != nil {
		return nil, err
	}
	retry := build()
	retry.AppendHeader(auth)
	return u.roundTrip(ctx, retry)
}

func (u *UA) newRegister(expires time.Duration) *sip.Request {
	req := u.newRegisterBase()
	secs := strconv.Itoa(int(expires / time.Second))
	contact := u.contactHeader()
	// reg-id and +sip.instance as JsSIP sends them (RFC 5626 §4.2).
	contact.Params.Add("reg-id", "1")
	contact.Params.Add("+sip.instance", u.instance)
	contact.Params.Add("expires", secs)
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", secs))
	req.AppendHeader(sip.NewHeader("Allow", allowMethods))
	req.AppendHeader(sip.NewHeader("Supported", "path,gruu,outbound"))
	req.SetBody(nil)
	return req
}

// newRegisterBase is a REGISTER of our registration's Call-ID with the
// next CSeq, before its Contact and Expires.
func (u *UA) newRegisterBase() *sip.Request {
	u.mu.Lock()
	u.regCSeq++
	cseq := u.regCSeq
	u.mu.Unlock()
	recipient := sip.Uri{Scheme: u.aor.Scheme, Host: u.aor.Host, Port: u.aor.Port}
	from := sip.FromHeader{Address: *u.aor.Clone(), Params: params("tag", u.regFromTag)}
	to := sip.ToHeader{Address: *u.aor.Clone(), Params: sip.NewParams()}
	return u.newRequest(sip.REGISTER, recipient, from, to, u.regCallID, cseq)
}

// authorization answers a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)
// challenge, RFC 3261 §22.
func (u *UA) authorization(req *sip.Request, res *sip.Response) (sip.Header, error) {
	challengeName, answerName := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		challengeName, answerName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(challengeName)
	if h == nil {
		return nil, fmt.Errorf("%d without %s: %w", res.StatusCode, challengeName, errBadChallenge)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", challengeName, errBadChallenge, err)
	}
	cred, err := digest.Digest(chal, digest.Options{
		Method:   string(req.Method),
		URI:      req.Recipient.String(),
		Username: u.user,
		Password: u.password,
		Count:    1,
	})
	if err != nil {
		return nil, fmt.Errorf("digest for %s: %w: %w", challengeName, errBadChallenge, err)
	}
	return sip.NewHeader(answerName, cred.String()), nil
}
