package sipws

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxWarningText bounds the error echoed in an intake response's Warning.
const maxWarningText = 200

// scannedRequest holds what an intake response needs, read from raw text when
// the SIP parser gave up.
type scannedRequest struct {
	method string
	vias   []string
	from   string
	to     string
	callID string
	cseq   string
}

// sipStatus is the status line of a response the intake sends itself.
type sipStatus struct {
	code   int
	reason string
}

var (
	statusBadRequest = sipStatus{400, "Bad Request"}
	// RFC 3261 has no code for too many header fields (413 is about the
	// body, 513 about the whole message's size): a 400 whose phrase says it.
	statusTooManyHeaders = sipStatus{400, "Too Many Header Fields"}
	statusTooLarge       = sipStatus{413, "Request Entity Too Large"}
	statusUnavailable    = sipStatus{503, "Service Unavailable"}
	statusBadVersion     = sipStatus{505, "Version Not Supported"}
)

// intakeResponse builds the response to a request the intake refuses
// before the Handler sees it, copying the headers a response must carry
// (RFC 3261 section 8.2.6.2) and naming why in a Warning; extra are more
// header lines, such as "Retry-After: 1".
func intakeResponse(req scannedRequest, st sipStatus, why error, extra ...string) []byte {
	to := req.to
	if !strings.Contains(strings.ToLower(to), ";tag=") {
		// RFC 3261 section 8.2.6.2: the UAS adds a To tag.
		to += ";tag=" + newFlow()[:10]
	}
	var b bytes.Buffer
	b.WriteString("SIP/2.0 " + strconv.Itoa(st.code) + " " + st.reason + "\r\n")
	for _, v := range req.vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	b.WriteString("From: " + req.from + "\r\n")
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Call-ID: " + req.callID + "\r\n")
	b.WriteString("CSeq: " + req.cseq + "\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	// RFC 3261 section 20.43: warn-code 399 is "miscellaneous warning".
	b.WriteString(`Warning: 399 imsgate "` + warningText(why.Error()) + "\"\r\n")
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// scanRequest finds the request line and the Via, From, To, Call-ID and
// CSeq headers by a tolerant textual scan: bare LF, folded lines and compact
// header names are accepted. It reports false if any of them is missing.
func scanRequest(data []byte) (scannedRequest, bool) {
	var req scannedRequest
	lines := strings.Split(string(data), "\n")
	method, ok := requestLineMethod(strings.TrimSuffix(lines[0], "\r"))
	if !ok {
		return req, false
	}
	req.method = method

	var headers []string // unfolded header lines
	for _, line := range lines[1:] {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break // end of the header section
		}
		if (line[0] == ' ' || line[0] == '\t') && len(headers) > 0 {
			headers[len(headers)-1] += " " + strings.TrimSpace(line)
			continue
		}
		headers = append(headers, line)
	}
	for _, h := range headers {
		name, value, found := strings.Cut(h, ":")
		if !found {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" || !printable(value) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			req.vias = append(req.vias, value)
		case "from", "f":
			req.from = firstOf(req.from, value)
		case "to", "t":
			req.to = firstOf(req.to, value)
		case "call-id", "i":
			req.callID = firstOf(req.callID, value)
		case "cseq":
			req.cseq = firstOf(req.cseq, value)
		}
	}
	ok = len(req.vias) > 0 && req.from != "" && req.to != "" && req.callID != "" && req.cseq != ""
	return req, ok
}

// requestLineMethod accepts "METHOD SP Request-URI SP SIP/x.y" and returns
// the method; a Request-URI with spaces in it (RFC 4475 lwsruri) is still
// a request to answer.
func requestLineMethod(line string) (string, bool) {
	parts := strings.Fields(line)
	if len(parts) < 3 || !isToken(parts[0]) {
		return "", false
	}
	if !strings.HasPrefix(strings.ToUpper(parts[len(parts)-1]), "SIP/") {
		return "", false
	}
	return strings.ToUpper(parts[0]), true
}

// isToken checks the RFC 3261 section 25.1 token characters.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// printable refuses control characters so a copied header can never split
// the reply into extra lines.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func firstOf(current, candidate string) string {
	if current != "" {
		return current
	}
	return candidate
}

// warningText makes an error fit inside a quoted-string: no quotes,
// backslashes or control characters, valid UTF-8, bounded length.
func warningText(s string) string {
	s = toValidUTF8(s)
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return '\''
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
	if len(s) > maxWarningText {
		cut := maxWarningText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
