package presence

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// MESSAGE (RFC 3428) both ways. A browser's MESSAGE goes to the core as a
// new request of the gateway's (own Call-ID and tag, the browser's
// credentials and body untouched); the core's final status comes back. A
// MESSAGE from the core reaches the one browser the gateway's Contact names,
// or every browser registered for the AoR it is addressed to; the first 2xx
// answers the core. Bodies of any content type are relayed as they are, up
// to Limits.MaxBodyBytes; each connection may send Limits.MessageRate a
// second.

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

// messageFromWeb relays a browser's MESSAGE to the core.
func (r *Relay) messageFromWeb(req *sip.Request, reply func(*sip.Response)) {
	out := relayed(req, *req.Recipient.Clone(), messageHeaders, r.newTag)
	r.wait(req, reply, func(ctx context.Context) (*sip.Response, error) { return r.core.Request(ctx, out) },
		func(got, _ *sip.Response) { r.logMessage(req, got, "web_to_core") })
}

// toDevices relays the core's MESSAGE, or NOTIFY outside a dialog, to the
// browser or browsers it is for.
func (r *Relay) toDevices(req *sip.Request, reply func(*sip.Response), headers []string, info bool) {
	if len(req.Body()) > r.lim.limits.MaxBodyBytes {
		reply(response(req, 413, "Request Entity Too Large"))
		return
	}
	devices := r.devicesFor(req.Recipient)
	if len(devices) == 0 {
		reply(response(req, 404, "Not Found"))
		return
	}
	r.wait(req, reply, func(ctx context.Context) (*sip.Response, error) { return r.fanOut(ctx, req, devices, headers) },
		func(got, _ *sip.Response) {
			if info {
				r.logMessage(req, got, "core_to_web")
			} else if got != nil {
				r.log.Debug("relayed to browsers", zap.String("method", string(req.Method)),
					zap.String("sip_call_id", callID(req)), zap.Int("status", got.StatusCode))
			}
		})
}

// devicesFor: the one device a Contact of ours names by its user part,
// else every device registered for the AoR.
func (r *Relay) devicesFor(u sip.Uri) []Device {
	if d, ok := r.bindings.Device(u.User); ok {
		return []Device{d}
	}
	return r.bindings.Devices(u)
}

func (r *Relay) logMessage(req *sip.Request, got *sip.Response, direction string) {
	outcome := "no_answer"
	if got != nil {
		outcome = "other" // a peer may send any number
		if got.StatusCode >= 100 && got.StatusCode <= 699 {
			outcome = strconv.Itoa(got.StatusCode/100) + "xx"
		}
	}
	r.counts.Add(direction + " " + outcome)
	if got == nil {
		return
	}
	r.log.Info("message relayed", zap.String("sip_call_id", callID(req)), zap.String("to", req.Recipient.String()),
		zap.Int("status", got.StatusCode), zap.Int("bytes", len(req.Body())))
}

// wait runs a relay off the caller's goroutine (handlers must not block),
// bounded by InFlight, and answers the original request with the far
// side's final response and its answerHeaders; done sees the far side's
// response (nil when none came) and ours before it leaves.
func (r *Relay) wait(req *sip.Request, reply func(*sip.Response), relay func(context.Context) (*sip.Response, error),
	done func(got, res *sip.Response)) {
	ok := r.spawn(func() {
		ctx, cancel := r.txContext()
		defer cancel()
		got, err := relay(ctx)
		res := answer(req, got, err, answerHeaders)
		if err != nil {
			r.log.Debug("relay failed", zap.String("method", string(req.Method)), zap.String("sip_call_id", callID(req)), zap.Error(err))
			got = nil
		}
		done(got, res)
		reply(res)
	})
	if !ok {
		reply(busy(req))
	}
}

// answer is our response to req for the far side's final response, or
// for the error that stood for it.
func answer(req *sip.Request, got *sip.Response, err error, headers []string) *sip.Response {
	if err != nil || got == nil {
		code, reason := statusOf(err)
		return response(req, code, reason)
	}
	res := response(req, got.StatusCode, got.Reason)
	copyHeaders(got, res, headers...)
	return res
}

// fanOut sends the core's request to each device at once; the first 2xx
// wins, else the best failure (the lowest class, RFC 3261 16.7 in spirit).
// The first 2xx answers the core at once, but every device still gets the
// request: the other sends run on to their own answer or timeout.
func (r *Relay) fanOut(ctx context.Context, req *sip.Request, devices []Device, headers []string) (*sip.Response, error) {
	type result struct {
		res *sip.Response
		err error
	}
	results := make(chan result, len(devices))
	// The sends outlive ctx (not the relay): this runs on a goroutine of
	// the relay's, so adding to its WaitGroup here is safe.
	sendCtx, cancel := context.WithTimeout(r.base, messageTimeout())
	var sends sync.WaitGroup
	sends.Add(len(devices))
	r.wg.Add(len(devices) + 1)
	for _, d := range devices {
		out := relayed(req, d.Contact, headers, r.newTag)
		go func() {
			defer r.wg.Done()
			defer sends.Done()
			res, err := r.flows.Request(sendCtx, d.Flow, out)
			results <- result{res, err}
		}()
	}
	go func() { defer r.wg.Done(); sends.Wait(); cancel() }()
	var best *sip.Response
	var lastErr error
	for range devices {
		var got result
		select {
		case got = <-results:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		switch {
		case got.err != nil || got.res == nil:
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

// relayed is the request we send for req: the same method, parties and
// body and the given headers, our own transaction and dialog identifiers.
func relayed(req *sip.Request, target sip.Uri, headers []string, newTag func(int) string) *sip.Request {
	d := calling(req, target, newTag)
	out := d.request(req.Method)
	copyHeaders(req, out, headers...)
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
