package democore

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// headerValues returns every comma-separated value of the named headers
// (sipgo parses most headers lazily and keeps "a, b" as one header).
func headerValues(m sip.Message, names ...string) []string {
	var out []string
	for _, name := range names {
		for _, h := range m.GetHeaders(name) {
			out = append(out, splitCommas(h.Value())...)
		}
	}
	return out
}

// splitCommas splits a header value at commas outside quotes and <>.
func splitCommas(v string) []string {
	var out []string
	inQuotes, inBrackets, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch ch := v[i]; {
		case ch == '"' && (i == 0 || v[i-1] != '\\'):
			inQuotes = !inQuotes
		case ch == '<' && !inQuotes:
			inBrackets = true
		case ch == '>' && !inQuotes:
			inBrackets = false
		case ch == ',' && !inQuotes && !inBrackets:
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// contactAddr is one parsed Contact value.
type contactAddr struct {
	wildcard bool
	uri      sip.Uri
	params   sip.HeaderParams
}

// parseContacts parses every Contact (or compact "m") value of m.
func parseContacts(m sip.Message) ([]contactAddr, error) {
	values := headerValues(m, "contact", "m")
	out := make([]contactAddr, 0, len(values))
	for _, v := range values {
		if v == "*" {
			out = append(out, contactAddr{wildcard: true})
			continue
		}
		var ca contactAddr
		if _, err := sip.ParseAddressValue(v, &ca.uri, &ca.params); err != nil {
			return nil, fmt.Errorf("parse contact %q: %w", v, err)
		}
		if ca.uri.Host == "" {
			return nil, fmt.Errorf("parse contact %q: %w: no host", v, ErrBadRequest)
		}
		out = append(out, ca)
	}
	return out, nil
}

// parseRoutes parses Record-Route (or Route) values in message order.
func parseRoutes(m sip.Message, name string) ([]sip.Uri, error) {
	values := headerValues(m, name)
	out := make([]sip.Uri, 0, len(values))
	for _, v := range values {
		var u sip.Uri
		var p sip.HeaderParams
		if _, err := sip.ParseAddressValue(v, &u, &p); err != nil {
			return nil, fmt.Errorf("parse %s %q: %w", name, v, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// aorKey normalises an address of record to "sip:user@host" (RFC 3261
// §10.3: the AoR is the To URI without port, parameters or headers).
func aorKey(u sip.Uri) string {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		scheme = "sip"
	}
	return scheme + ":" + u.User + "@" + strings.ToLower(u.Host)
}

// parseAoR accepts "sip:alice@example.net" or "<sip:...>;params".
func parseAoR(s string) (sip.Uri, error) {
	var u sip.Uri
	var p sip.HeaderParams
	if _, err := sip.ParseAddressValue(s, &u, &p); err != nil {
		return u, fmt.Errorf("parse aor %q: %w", s, err)
	}
	if u.User == "" || u.Host == "" {
		return u, fmt.Errorf("parse aor %q: %w: user and host needed", s, ErrBadRequest)
	}
	return u, nil
}

// prepareOutgoing gives req a Via and, over UDP, makes it leave from the
// listening socket.
func (c *Core) prepareOutgoing(req *sip.Request) []sipgo.ClientRequestOption {
	if req.Transport() == "UDP" {
		if laddr, ok := c.udpLocalAddr(); ok {
			req.Laddr = laddr
		}
	}
	return []sipgo.ClientRequestOption{
		func(cl *sipgo.Client, r *sip.Request) error {
			if r.Via() == nil {
				if err := sipgo.ClientRequestAddVia(cl, r); err != nil {
					return err
				}
			}
			if r.Body() == nil {
				r.SetBody(nil)
			}
			return nil
		},
	}
}

// doRequest sends a non-INVITE request in its own transaction and returns
// the final response.
func (c *Core) doRequest(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := c.boundCtx(ctx)
	defer cancel()
	c.log.Debug("sip request out", zap.String("method", req.Method.String()), zap.String("sip_call_id", callIDOf(req)), zap.String("remote_addr", req.Destination()))
	tx, err := c.startTransaction(ctx, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("send %s: %w", req.Method, tx.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("send %s: %w", req.Method, ctx.Err())
		}
	}
}

// writeRequest sends a request outside any transaction (ACK for 2xx).
func (c *Core) writeRequest(req *sip.Request) error {
	c.log.Debug("sip request out", zap.String("method", req.Method.String()), zap.String("sip_call_id", callIDOf(req)), zap.String("remote_addr", req.Destination()))
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.sendClosed {
		return fmt.Errorf("send %s: %w", req.Method, ErrClosed)
	}
	if err := c.client.WriteRequest(req, c.prepareOutgoing(req)...); err != nil {
		return fmt.Errorf("send %s: %w", req.Method, err)
	}
	return nil
}

// startTransaction hands req to a new client transaction unless closing.
func (c *Core) startTransaction(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.sendClosed {
		return nil, fmt.Errorf("send %s: %w", req.Method, ErrClosed)
	}
	tx, err := c.client.TransactionRequest(ctx, req, c.prepareOutgoing(req)...)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Method, err)
	}
	return tx, nil
}
