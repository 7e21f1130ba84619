package webua

import (
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Message is a MESSAGE (RFC 3428) received outside a dialog. The UA has
// answered it 200 OK, as a browser's library does.
type Message struct {
	From        string // the From URI
	ContentType string
	Body        string
}

// Messages delivers the MESSAGEs received outside a dialog. It is closed
// when the WebSocket is gone.
func (u *UA) Messages() <-chan Message { return u.messages }

// pushMessage runs on the reader goroutine; it drops rather than block.
func (u *UA) pushMessage(req *sip.Request) {
	m := Message{From: req.From().Address.String(), ContentType: headerOf(req, "Content-Type"), Body: string(req.Body())}
	select {
	case u.messages <- m:
	default:
		u.log.Warn("message dropped: channel full", zap.String("sip_call_id", callIDOf(req)))
	}
}
