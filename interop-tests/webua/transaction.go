package webua

import (
	"context"
	"fmt"

	"github.com/emiago/sipgo/sip"
)

// txKey identifies a client transaction: RFC 3261 §17.1.3 matches responses
// by the top Via branch and the CSeq method.
func txKey(branch string, method sip.RequestMethod) string {
	return branch + " " + string(method)
}

func requestTxKey(req *sip.Request) string {
	branch, _ := req.Via().Params.Get("branch")
	return txKey(branch, req.CSeq().MethodName)
}

// addTx registers onResponse for req's responses. onResponse runs on the
// reader goroutine and must not block.
func (u *UA) addTx(req *sip.Request, onResponse func(*sip.Response)) (string, error) {
	key := requestTxKey(req)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return "", errClosed
	}
	u.txs[key] = onResponse
	return key, nil
}

func (u *UA) removeTx(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.txs, key)
}

// roundTrip sends a non-INVITE request and waits for its final response.
// Over a WebSocket nothing is retransmitted (RFC 3261 §17.1.2.2 timer E is
// for unreliable transports), so ctx alone bounds the wait.
func (u *UA) roundTrip(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return u.roundTripThen(ctx, req, nil)
}

// roundTripThen is roundTrip with onFinal run on the reader goroutine as
// the final response is read, before anything read after it.
func (u *UA) roundTripThen(ctx context.Context, req *sip.Request, onFinal func(*sip.Response)) (*sip.Response, error) {
	final := make(chan *sip.Response, 1)
	key, err := u.addTx(req, func(res *sip.Response) {
		if res.StatusCode < 200 {
			return
		}
		if onFinal != nil {
			onFinal(res)
		}
		select {
		case final <- res:
		default: // a repeated final response changes nothing
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Method, err)
	}
	defer u.removeTx(key)
	if err := u.writeMessage(req); err != nil {
		return nil, fmt.Errorf("%s: %w", req.Method, err)
	}
	select {
	case res := <-final:
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w: %w", req.Method, errNoFinal, ctx.Err())
	case <-u.readerDone:
		return nil, fmt.Errorf("%s: %w", req.Method, errClosed)
	}
}
