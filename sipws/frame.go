package sipws

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

// maxCloseReason is the room left for a reason in a close frame: 125 bytes
// of control payload minus the 2-byte code (RFC 6455 section 5.5).
const maxCloseReason = 123

// frameAction says what the connection does with one WebSocket message.
type frameAction int

const (
	actionUnknown frameAction = iota
	// actionIgnore: an empty or whitespace-only frame, the single-CRLF
	// keepalive "pong" (RFC 5626 section 4.4.1) among them.
	actionIgnore
	// actionDeliver: a valid SIP message for the Handler.
	actionDeliver
	// actionReject: a broken request we can still answer with 400.
	actionReject
	// actionDrop: a broken ACK, which gets no response.
	actionDrop
	// actionClose: bytes we cannot answer; close the WebSocket.
	actionClose
	// actionKeepalive: the double-CRLF keepalive "ping" (RFC 5626 section
	// 4.4.1), answered with keepalivePong on the same connection.
	actionKeepalive
)

var (
	keepalivePing = []byte("\r\n\r\n")
	// keepalivePong is sent as is by every connection; never modified.
	keepalivePong = []byte("\r\n")
)

func (a frameAction) String() string {
	switch a {
	case actionIgnore:
		return "ignore"
	case actionDeliver:
		return "deliver"
	case actionReject:
		return "reject"
	case actionDrop:
		return "drop"
	case actionClose:
		return "close"
	case actionKeepalive:
		return "keepalive"
	default:
		return "unknown"
	}
}

// frameResult is the decision for one frame.
type frameResult struct {
	action frameAction
	// msg is set for actionDeliver.
	msg sip.Message
	// reply is a ready-to-send 400 response for actionReject.
	reply []byte
	// closeCode and closeReason are set for actionClose.
	closeCode   int
	closeReason string
	// err is the parse problem for actionReject and actionClose.
	err error
}

// decodeFrame turns one WebSocket message into a SIP message, a 400 reply or
// a close decision. RFC 7118 section 5: each WebSocket message carries
// exactly one SIP message, so the whole frame is parsed as a datagram.
func decodeFrame(p *sip.Parser, data []byte) frameResult {
	if len(bytes.TrimSpace(data)) == 0 {
		if bytes.Equal(data, keepalivePing) {
			return frameResult{action: actionKeepalive}
		}
		return frameResult{action: actionIgnore}
	}
	// RFC 3261 section 7.5: CRLFs before the start line are ignored.
	data = bytes.TrimLeft(data, "\r\n")

	msg, err := p.ParseSIP(data)
	if err == nil {
		err = checkMandatory(msg)
	}
	if err == nil {
		return frameResult{action: actionDeliver, msg: msg}
	}
	err = fmt.Errorf("parse sip: %w", err)
	if req, ok := scanRequest(data); ok {
		if req.method == "ACK" {
			// RFC 3261 section 17.1.1.3: an ACK is never answered.
			return frameResult{action: actionDrop, err: err}
		}
		return frameResult{action: actionReject, reply: badRequest(req, err), err: err}
	}
	return frameResult{
		action:      actionClose,
		closeCode:   websocket.CloseInvalidFramePayloadData,
		closeReason: truncateReason("invalid SIP message: " + err.Error()),
		err:         err,
	}
}

// checkMandatory makes sure b2bua never sees a message without the headers
// every SIP message needs (RFC 3261 section 8.1.1).
func checkMandatory(msg sip.Message) error {
	switch {
	case msg.Via() == nil:
		return fmt.Errorf("%w: Via", errMissingHeader)
	case msg.From() == nil:
		return fmt.Errorf("%w: From", errMissingHeader)
	case msg.To() == nil:
		return fmt.Errorf("%w: To", errMissingHeader)
	case msg.CallID() == nil || len(*msg.CallID()) == 0:
		return fmt.Errorf("%w: Call-ID", errMissingHeader)
	case msg.CSeq() == nil:
		return fmt.Errorf("%w: CSeq", errMissingHeader)
	}
	// RFC 3261 section 8.1.1.5: a request's CSeq names its own method.
	if req, ok := msg.(*sip.Request); ok && msg.CSeq().MethodName != req.Method {
		return fmt.Errorf("%w: %s vs %s", errCSeqMismatch, msg.CSeq().MethodName, req.Method)
	}
	return nil
}

// truncateReason cuts s to fit a close frame without splitting a UTF-8
// character; gorilla rejects close frames with invalid UTF-8.
func truncateReason(s string) string {
	s = toValidUTF8(s)
	if len(s) <= maxCloseReason {
		return s
	}
	cut := maxCloseReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s), []byte("?")))
}
