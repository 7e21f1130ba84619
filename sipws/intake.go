package sipws

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

// frameLimits are what one SIP message may carry (the limits config
// section); ws.max_message_bytes has bounded the frame already.
type frameLimits struct {
	maxHeaders  int // header field values, limits.max_headers
	maxSDPBytes int // an SDP body, limits.max_sdp_bytes
}

// intakeFrame is the whole decision on one frame of a connection: its
// request rate first, before any parsing, then decodeFrame.
func intakeFrame(rt *requestRate, p *sip.Parser, lim frameLimits, data []byte, now time.Time) frameResult {
	if res, limited := rt.limit(data, now); limited {
		return res
	}
	return decodeFrame(p, lim, data)
}

// refuseFrame decides what a refused frame gets: a request its response,
// an ACK (RFC 3261 section 17.1.1.3) or a response nothing, and bytes that
// are neither a closed connection.
func refuseFrame(data []byte, kind refusalKind, st sipStatus, err error) frameResult {
	res := frameResult{refusal: kind, err: err}
	switch req, ok := scanRequest(data); {
	case ok && req.method == "ACK", !ok && isResponse(data):
		res.action = actionDrop
	case ok:
		res.action = actionReject
		res.reply = intakeResponse(req, st, err)
	default:
		res.action = actionClose
		res.closeCode = websocket.CloseInvalidFramePayloadData
		res.closeReason = truncateReason("invalid SIP message: " + err.Error())
	}
	return res
}

// isResponse tells a status line from a request line: no method has a "/".
func isResponse(data []byte) bool {
	return len(data) >= 4 && bytes.EqualFold(data[:4], []byte("SIP/"))
}

// headerLinesOver reports whether the header section of data has more than
// max header lines, folded lines counted with theirs. It stops there, so a
// frame of nothing but header lines costs no parsing.
func headerLinesOver(data []byte, max int) bool {
	_, data, _ = bytes.Cut(data, []byte("\n")) // the start line
	for n := 0; len(data) > 0; {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return false // the end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if n++; n > max {
			return true
		}
	}
	return false
}

// checkIntake asks of a parsed message what the parser does not: a version
// the gateway speaks, the single header fields once only, and the limits.
// It returns the refusal, with its status and why, or an error of nil.
func checkIntake(msg sip.Message, lim frameLimits) (refusalKind, sipStatus, error) {
	if v := sipVersion(msg); !strings.EqualFold(v, "SIP/2.0") {
		return refusalMalformed, statusBadVersion, fmt.Errorf("%w: %q", errSIPVersion, v)
	}
	if name := repeatedField(msg); name != "" {
		return refusalMalformed, statusBadRequest, fmt.Errorf("%w: %s", errRepeated, name)
	}
	// RFC 3261 section 7.3.1: a comma-separated row is as many fields as it
	// has values; the parser splits them, so this counts what headerLinesOver
	// could not.
	if n := len(fields(msg)); n > lim.maxHeaders {
		return refusalTooManyHeaders, statusTooManyHeaders, fmt.Errorf("%w: %d, at most %d", errTooManyFields, n, lim.maxHeaders)
	}
	if n := len(msg.Body()); n > lim.maxSDPBytes && maybeSDP(msg) {
		return refusalSDPTooLarge, statusTooLarge, fmt.Errorf("%w: %d bytes, at most %d", errSDPTooLarge, n, lim.maxSDPBytes)
	}
	return refusalUnknown, sipStatus{}, nil
}

// parsedMessage is what sip.Request and sip.Response have beyond
// sip.Message.
type parsedMessage interface {
	Headers() []sip.Header
	ContentType() *sip.ContentTypeHeader
}

// fields are the header field values of msg, in order.
func fields(msg sip.Message) []sip.Header {
	if m, ok := msg.(parsedMessage); ok {
		return m.Headers()
	}
	return nil
}

func sipVersion(msg sip.Message) string {
	switch m := msg.(type) {
	case *sip.Request:
		return m.SipVersion
	case *sip.Response:
		return m.SipVersion
	}
	return ""
}

// onceOnly are the header fields RFC 3261 section 20 allows once (their
// grammar has no comma list), as the parser names them.
var onceOnly = [...]string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// repeatedField names the first onceOnly field that comes again, or "".
// The parser would keep one of them and relay both: a b2bua deciding on
// the one and a core on the other (RFC 4475 multi01, mcl01).
func repeatedField(msg sip.Message) string {
	var seen [len(onceOnly)]bool
	for _, h := range fields(msg) {
		i := slices.Index(onceOnly[:], h.Name())
		if i < 0 {
			continue
		}
		if seen[i] {
			return h.Name()
		}
		seen[i] = true
	}
	return ""
}

// maybeSDP is true for an SDP body and for a multipart one, which can
// carry an SDP part (RFC 5621).
func maybeSDP(msg sip.Message) bool {
	m, ok := msg.(parsedMessage)
	if !ok {
		return false
	}
	ct := m.ContentType()
	if ct == nil {
		return false
	}
	media, _, _ := strings.Cut(ct.Value(), ";")
	media = strings.ToLower(strings.TrimSpace(media))
	return media == "application/sdp" || strings.HasPrefix(media, "multipart/")
}
