package sipws

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
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
	// actionReject: a request refused with a response of the intake's
	// own (400, 413, 503, 505).
	actionReject
	// actionDrop: a refused ACK or response, which gets no response.
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
	// reply is a ready-to-send response for actionReject.
	reply []byte
	// closeCode and closeReason are set for actionClose.
	closeCode   int
	closeReason string
	// err is why, and refusal its kind, for actionReject, actionDrop and
	// actionClose.
	err     error
	refusal refusalKind
}

// decodeFrame turns one WebSocket message into a SIP message, a refusal
// (a response, a drop or a close) or a keepalive. RFC 7118 section 5: each
// WebSocket message carries exactly one SIP message, so the whole frame is
// parsed as a datagram.
func decodeFrame(p *sip.Parser, lim frameLimits, data []byte) frameResult {
	if len(bytes.TrimSpace(data)) == 0 {
		if bytes.Equal(data, keepalivePing) {
			return frameResult{action: actionKeepalive}
		}
		return frameResult{action: actionIgnore}
	}
	// RFC 3261 section 7.5: CRLFs before the start line are ignored.
	data = bytes.TrimLeft(data, "\r\n")
	if headerLinesOver(data, lim.maxHeaders) {
		err := fmt.Errorf("%w: more than %d", errTooManyFields, lim.maxHeaders)
		return refuseFrame(data, refusalTooManyHeaders, statusTooManyHeaders, err)
	}
	msg, err := p.ParseSIP(data)
	if err == nil {
		err = checkMandatory(msg)
	}
	if err != nil {
		return refuseFrame(data, refusalMalformed, statusBadRequest, fmt.Errorf("parse sip: %w", err))
	}
	if kind, st, err := checkIntake(msg, lim); err != nil {
		return refuseFrame(data, kind, st, err)
	}
	return frameResult{action: actionDeliver, msg: msg}
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
	// The parser upper-cases the request line's method only, so case
	// cannot count (RFC 4475 intmeth).
	if req, ok := msg.(*sip.Request); ok && !strings.EqualFold(string(msg.CSeq().MethodName), string(req.Method)) {
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
