package presence

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// MESSAGE (RFC 3428) both ways. A browser's MESSAGE goes to the core as a
// new request of the gateway's (own Call-ID and tag, the browser's
// credentials and body untouched); the core's final status comes back. A
// MESSAGE from the core reaches the one browser the gateway's Contact names,
// or every browser registered for the AoR it is addressed to; the first 2xx
// answers the core. Bodies of any content type are relayed as they are, up
// to Limits.MaxBodyBytes; each connection may send Limits.MessageRate a
// second.

// Limits bound what one browser connection may make the relay do.
type Limits struct {
	MaxBodyBytes int
	MessageRate  float64 // per second, per connection
	MessageBurst int
	// InFlight bounds the requests the relay waits on at once, all
	// connections together.
	InFlight int
}

// DefaultLimits are used when New is given none.
var DefaultLimits = Limits{MaxBodyBytes: 64 << 10, MessageRate: 5, MessageBurst: 20, InFlight: 1024}

// messageHeaders go with a MESSAGE from one side to the other.
var messageHeaders = []string{"Content-Type", "Authorization", "Proxy-Authorization", "P-Preferred-Identity",
	"P-Asserted-Identity", "Privacy", "Date", "Expires", "Subject", "Accept-Contact", "In-Reply-To"}

// answerHeaders go with the final response back to the sender: what it
// needs to retry (a challenge) or to know the outcome.
var answerHeaders = []string{"WWW-Authenticate", "Proxy-Authenticate", "Retry-After", "Warning", "Date",
	"Min-Expires", "Unsupported"}

// messageTimeout is how long the relay waits for the far side's final
// response: 64·T1, a non-INVITE transaction's lifetime (RFC 3261 17.1.2.2).
func messageTimeout() time.Duration { return 64 * sip.T1 }

// limiters keeps one rate limiter per connection; a closed connection's
// is dropped with Forget.
type limiters struct {
	mu     sync.Mutex
	byFlow map[string]*rate.Limiter
	limits Limits
}

func (l *limiters) allow(flow string) bool {
	l.mu.Lock()
	lim := l.byFlow[flow]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(l.limits.MessageRate), l.limits.MessageBurst)
		l.byFlow[flow] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// Forget drops what the relay keeps for a closed connection.
func (r *Relay) Forget(flow string) {
	r.lim.mu.Lock()
	delete(r.lim.byFlow, flow)
	r.lim.mu.Unlock()
}

// messageFromWeb relays a browser's MESSAGE to the core.
func (r *Relay) messageFromWeb(flow string, req *sip.Request, reply func(*sip.Response)) {
	if res := r.refuse(req, flow); res != nil {
		reply(res)
		return
	}
	out := relayed(req, *req.Recipient.Clone())
	r.wait(req, reply, func(ctx context.Context) (*sip.Response, error) { return r.core.Request(ctx, out) })
}

// messageFromCore relays the core's MESSAGE to the browser or browsers it
// is for.
func (r *Relay) messageFromCore(req *sip.Request, reply func(*sip.Response)) {
	if len(req.Body()) > r.lim.limits.MaxBodyBytes {
		reply(response(req, 413, "Request Entity Too Large"))
		return
	}
	devices := r.bindings.Devices(req.Recipient)
	if d, ok := r.bindings.Device(req.Recipient.User); ok {
		devices = []Device{d}
	}
	if len(devices) == 0 {
		reply(response(req, 404, "Not Found"))
		return
	}
	r.wait(req, reply, func(ctx context.Context) (*sip.Response, error) { return r.fanOut(ctx, req, devices) })
}

// refuse answers what a browser may not send: too large, too often.
func (r *Relay) refuse(req *sip.Request, flow string) *sip.Response {
	switch {
	case len(req.Body()) > r.lim.limits.MaxBodyBytes:
		return response(req, 413, "Request Entity Too Large")
	case !r.lim.allow(flow):
		res := response(req, 429, "Too Many Requests")
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
		return res
	}
	return nil
}

// wait runs a relay off the caller's goroutine (handlers must not block),
// bounded by InFlight, and answers the original request with the far
// side's final response.
func (r *Relay) wait(req *sip.Request, reply func(*sip.Response), relay func(context.Context) (*sip.Response, error)) {
	select {
	case r.inFlight <- struct{}{}:
	default:
		res := response(req, 503, "Service Unavailable")
		res.AppendHeader(sip.NewHeader("Retry-After", "1"))
		reply(res)
		return
	}
	go func() {
		defer func() { <-r.inFlight }()
		ctx, cancel := context.WithTimeout(context.Background(), messageTimeout())
		defer cancel()
		got, err := relay(ctx)
		if err != nil {
			r.log.Debug("message relay failed", zap.String("sip_call_id", callID(req)), zap.Error(err))
			code, reason := statusOf(err)
			reply(response(req, code, reason))
			return
		}
		res := response(req, got.StatusCode, got.Reason)
		copyHeaders(got, res, answerHeaders...)
		r.log.Info("message relayed", zap.String("sip_call_id", callID(req)), zap.String("to", req.Recipient.String()),
			zap.Int("status", got.StatusCode), zap.Int("bytes", len(req.Body())))
		reply(res)
	}()
}

// fanOut sends the core's MESSAGE to each device at once; the first 2xx
// wins, else the best failure (the lowest class, RFC 3261 16.7 in spirit).
// The first 2xx answers the core at once, but every device still gets the
// message: the other sends run on to their own answer or timeout.
func (r *Relay) fanOut(ctx context.Context, req *sip.Request, devices []Device) (*sip.Response, error) {
	type result struct {
		res *sip.Response
		err error
	}
	results := make(chan result, len(devices))
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), messageTimeout())
	var sends sync.WaitGroup
	for _, d := range devices {
		out := relayed(req, d.Contact)
		sends.Add(1)
		go func() {
			defer sends.Done()
			res, err := r.flows.Request(sendCtx, d.Flow, out)
			results <- result{res, err}
		}()
	}
	go func() { sends.Wait(); cancel() }()
	var best *sip.Response
	var lastErr error
	for range devices {
		got := <-results
		switch {
		case got.err != nil:
			lastErr = got.err
		case got.res.StatusCode < 300:
			return got.res, nil
		case best == nil || got.res.StatusCode/100 < best.StatusCode/100:
			best = got.res
		}
	}
	if best != nil {
		return best, nil
	}
	return nil, lastErr
}

// relayed is the MESSAGE we send for req: the same parties and body, our
// own transaction and dialog identifiers.
func relayed(req *sip.Request, target sip.Uri) *sip.Request {
	out := sip.NewRequest(sip.MESSAGE, target)
	from := &sip.FromHeader{DisplayName: req.From().DisplayName, Address: *req.From().Address.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	out.AppendHeader(from)
	out.AppendHeader(&sip.ToHeader{DisplayName: req.To().DisplayName, Address: *req.To().Address.Clone(), Params: sip.NewParams()})
	cid := sip.CallIDHeader(sip.GenerateTagN(24))
	out.AppendHeader(&cid)
	out.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	mf := sip.MaxForwardsHeader(70)
	out.AppendHeader(&mf)
	copyHeaders(req, out, messageHeaders...)
	out.SetBody(req.Body())
	return out
}

func copyHeaders(from, to sip.Message, names ...string) {
	for _, n := range names {
		for _, h := range from.GetHeaders(n) {
			to.AppendHeader(sip.NewHeader(h.Name(), h.Value()))
		}
	}
}

func callID(m sip.Message) string {
	if h := m.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// Status is an error that says which SIP status the sender should get.
type Status interface {
	error
	SIPStatus() (int, string)
}

// statusOf is the status for a relay that got no response: the one err
// names, else 408 (no final response in 64·T1).
func statusOf(err error) (int, string) {
	var s Status
	if errors.As(err, &s) {
		return s.SIPStatus()
	}
	return 408, "Request Timeout"
}
