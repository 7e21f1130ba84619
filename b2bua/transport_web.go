package b2bua

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// webTransport carries a leg over a browser's WebSocket flow. WebSocket is
// reliable (RFC 7118): nothing is retransmitted, and a client transaction is
// the match of its responses by Via branch and CSeq method, bounded by
// 64·T1 (Timer B/F) until its first provisional.
type webTransport struct {
	g    *Gateway
	flow webFlow
}

// webTxs matches browser responses to the call that sent the request.
type webTxs struct {
	mu    sync.Mutex
	byKey map[string]webTxEntry
}

type webTxEntry struct {
	flow string
	call *Call
	tx   *clientTx
	// deliver takes the responses of a request that is not a call's (the
	// presence relay's).
	deliver func(*sip.Response)
}

func (w *webTxs) add(key string, e webTxEntry) {
	w.mu.Lock()
	w.byKey[key] = e
	w.mu.Unlock()
}

func (w *webTxs) remove(key string) {
	w.mu.Lock()
	delete(w.byKey, key)
	w.mu.Unlock()
}

func (w *webTxs) get(key string) (webTxEntry, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.byKey[key]
	return e, ok
}

func (t *webTransport) send(c *Call, tx *clientTx) error {
	req := tx.req
	if req.Via() == nil {
		req.PrependHeader(webVia(t.flow))
	}
	key := branchOf(req) + string(req.Method)
	t.g.webTxs.add(key, webTxEntry{flow: t.flow.Flow(), call: c, tx: tx})
	timer := time.AfterFunc(64*sip.T1, func() { c.enqueue(event{kind: evTxTimeout, tx: tx}) })
	tx.stop = func() {
		timer.Stop()
		t.g.webTxs.remove(key)
	}
	if err := t.flow.WriteMessage(req); err != nil {
		tx.stop()
		return errFlowGone
	}
	return nil
}

func (t *webTransport) ack(req *sip.Request) error {
	if req.Via() == nil {
		req.PrependHeader(webVia(t.flow))
	}
	if err := t.flow.WriteMessage(req); err != nil {
		return errFlowGone
	}
	return nil
}

func (t *webTransport) ackFailure(inv *sip.Request, res *sip.Response) {
	_ = t.flow.WriteMessage(ackOfFailure(inv, res))
}

func (t *webTransport) resend(res *sip.Response) error { return t.flow.WriteMessage(res) }

func (t *webTransport) retransmits2xx() bool { return false }

// prepareInDialog: every request to a browser goes over its flow, whatever
// the .invalid host of its Contact says.
func (t *webTransport) prepareInDialog(*sip.Request) {}

// webServerTx wraps a browser request for the call that answers it.
func webServerTx(f webFlow, req *sip.Request) *serverTx {
	return &serverTx{leg: SideWeb, req: req, respond: func(res *sip.Response) error { return f.WriteMessage(res) }}
}

// webVia is the gateway's Via toward a browser.
func webVia(f webFlow) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: f.Transport(),
		Host: "imsgate.invalid", Params: sip.NewParams()}
	v.Params.Add("branch", newBranch())
	return v
}
