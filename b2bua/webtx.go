package b2bua

import (
	"sync"

	"github.com/emiago/sipgo/sip"
)

// webClientTx is a request the gateway sent to a browser, waiting for its
// responses. WebSocket is reliable (RFC 7118), so there is nothing to
// retransmit: matching responses by Via branch and CSeq method is the whole
// client transaction.
type webClientTx struct {
	flow      string
	key       string
	responses chan *sip.Response
	failed    chan struct{} // the flow closed
	once      sync.Once
}

func (t *webClientTx) deliver(res *sip.Response) {
	select {
	case t.responses <- res:
	default: // a browser flooding provisionals loses the surplus, not the gateway
	}
}

func (t *webClientTx) fail() { t.once.Do(func() { close(t.failed) }) }

// sendWeb writes a request to a browser flow and returns its transaction.
// ACK has no transaction and returns nil.
func (g *Gateway) sendWeb(f webFlow, req *sip.Request) (*webClientTx, error) {
	var tx *webClientTx
	if !req.IsAck() {
		tx = &webClientTx{
			flow:      f.Flow(),
			key:       branchOf(req) + string(req.Method),
			responses: make(chan *sip.Response, 8),
			failed:    make(chan struct{}),
		}
		g.mu.Lock()
		g.webTxs[tx.key] = tx
		g.mu.Unlock()
	}
	if err := f.WriteMessage(req); err != nil {
		if tx != nil {
			g.endWebTx(tx)
		}
		return nil, errFlowGone
	}
	return tx, nil
}

func (g *Gateway) endWebTx(tx *webClientTx) {
	if tx == nil {
		return
	}
	g.mu.Lock()
	delete(g.webTxs, tx.key)
	g.mu.Unlock()
}

// webVia is the gateway's Via toward a browser.
func webVia(f webFlow) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: f.Transport(),
		Host: "imsgate.invalid", Params: sip.NewParams()}
	v.Params.Add("branch", newBranch())
	return v
}
