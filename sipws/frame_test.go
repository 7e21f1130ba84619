package sipws

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"

	"github.com/imsgate/imsgate/configs"
)

const registerMsg = "REGISTER sip:example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: <sip:alice@example.com>;tag=65bnmj\r\n" +
	"To: <sip:alice@example.com>\r\n" +
	"Call-ID: aiuy7k9njasd\r\n" +
	"CSeq: 1 REGISTER\r\n" +
	"Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=600\r\n" +
	"Content-Length: 0\r\n\r\n"

// badMaxForwards parses up to Max-Forwards and then fails: answerable with 400.
const badMaxForwards = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"v: SIP/2.0/WSS h.invalid;branch=z9hG4bK776\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK777\r\n" +
	"f: <sip:alice@example.com>;tag=9fxced76sl\r\n" +
	"t: <sip:bob@example.com>\r\n" +
	"i: 3848276298220188511@atlanta.example.com\r\n" +
	"CSeq: 314159 INVITE\r\n" +
	"Max-Forwards: seventy\r\n" +
	"Content-Length: 0\r\n\r\n"

// defaultFrameLimits are the frame limits of configs.DefaultLimits.
var defaultFrameLimits = frameLimits{maxHeaders: configs.DefaultLimits().MaxHeaders, maxSDPBytes: configs.DefaultLimits().MaxSDPBytes}

// withHeaders adds n header lines of the form "X-Pad-i: v" before the end
// of msg's header section.
func withHeaders(msg string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-Pad-%d: v\r\n", i)
	}
	return strings.Replace(msg, "Content-Length: 0\r\n", b.String()+"Content-Length: 0\r\n", 1)
}

// withBody gives msg a body of n bytes of contentType.
func withBody(msg, contentType string, n int) string {
	body := strings.Repeat("a", n)
	return strings.Replace(msg, "Content-Length: 0\r\n\r\n",
		fmt.Sprintf("Content-Type: %s\r\nContent-Length: %d\r\n\r\n%s", contentType, n, body), 1)
}

const okResponse = "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK1\r\n" +
	"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"

func TestDecodeFrame(t *testing.T) {
	parser := sip.NewParser()
	maxSDP := defaultFrameLimits.maxSDPBytes
	tests := []struct {
		name        string
		frame       string
		want        frameAction
		wantCallID  string
		wantCode    int // close code
		wantStatus  int // reply status; 400 when unset
		wantRefusal refusalKind
	}{
		{name: "double crlf keepalive ping", frame: "\r\n\r\n", want: actionKeepalive},
		{name: "single crlf keepalive pong", frame: "\r\n", want: actionIgnore},
		{name: "triple crlf", frame: "\r\n\r\n\r\n", want: actionIgnore},
		{name: "empty", frame: "", want: actionIgnore},
		{name: "spaces", frame: " \t \r\n", want: actionIgnore},
		{name: "register", frame: registerMsg, want: actionDeliver, wantCallID: "aiuy7k9njasd"},
		{name: "leading crlf", frame: "\r\n" + registerMsg, want: actionDeliver, wantCallID: "aiuy7k9njasd"},
		{name: "response", frame: "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK1\r\n" +
			"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
			want: actionDeliver, wantCallID: "r1"},
		{name: "bad max-forwards", frame: badMaxForwards, want: actionReject,
			wantCallID: "3848276298220188511@atlanta.example.com", wantRefusal: refusalMalformed},
		{name: "cseq method mismatch", frame: strings.Replace(registerMsg, "CSeq: 1 REGISTER", "CSeq: 1 INVITE", 1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantRefusal: refusalMalformed},
		{name: "cseq method in other case", frame: strings.Replace(registerMsg, "CSeq: 1 REGISTER", "CSeq: 1 register", 1),
			want: actionDeliver, wantCallID: "aiuy7k9njasd"},
		{name: "missing call-id", frame: strings.Replace(registerMsg, "Call-ID: aiuy7k9njasd\r\n", "", 1),
			want: actionClose, wantCode: websocket.CloseInvalidFramePayloadData, wantRefusal: refusalMalformed},
		{name: "bad ack dropped", frame: strings.NewReplacer("INVITE", "ACK").Replace(badMaxForwards), want: actionDrop,
			wantRefusal: refusalMalformed},
		{name: "bad response dropped", frame: strings.Replace(okResponse, "200 OK", "4294967301 Big", 1), want: actionDrop,
			wantRefusal: refusalMalformed},
		{name: "garbage", frame: "hello, world", want: actionClose, wantCode: websocket.CloseInvalidFramePayloadData,
			wantRefusal: refusalMalformed},
		{name: "binary junk", frame: "\x00\xff\xfe\x80 INVITE", want: actionClose, wantCode: websocket.CloseInvalidFramePayloadData,
			wantRefusal: refusalMalformed},
		{name: "long garbage reason truncated", frame: strings.Repeat("é", 400), want: actionClose,
			wantCode: websocket.CloseInvalidFramePayloadData, wantRefusal: refusalMalformed},
		{name: "unsupported version", frame: strings.Replace(registerMsg, "SIP/2.0\r\n", "SIP/7.0\r\n", 1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantStatus: 505, wantRefusal: refusalMalformed},
		{name: "unsupported version response dropped", frame: strings.Replace(okResponse, "SIP/2.0 200", "SIP/3.0 200", 1),
			want: actionDrop, wantRefusal: refusalMalformed},
		{name: "from twice", frame: strings.Replace(registerMsg, "To:", "From: <sip:mallory@example.com>;tag=x\r\nTo:", 1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantRefusal: refusalMalformed},
		{name: "content-length twice", frame: strings.Replace(registerMsg, "Content-Length: 0\r\n", "l: 0\r\nContent-Length: 0\r\n", 1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantRefusal: refusalMalformed},
		{name: "headers at the limit", frame: withHeaders(registerMsg, defaultFrameLimits.maxHeaders-8),
			want: actionDeliver, wantCallID: "aiuy7k9njasd"},
		{name: "header lines over the limit", frame: withHeaders(registerMsg, defaultFrameLimits.maxHeaders),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantRefusal: refusalTooManyHeaders},
		{name: "header values over the limit", frame: strings.Replace(registerMsg, "Via: ",
			"Via: "+strings.Repeat("SIP/2.0/WSS x.invalid;branch=z9hG4bKx, ", defaultFrameLimits.maxHeaders), 1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantRefusal: refusalTooManyHeaders},
		{name: "ack with too many headers dropped", frame: withHeaders(strings.ReplaceAll(registerMsg, "REGISTER", "ACK"), 200),
			want: actionDrop, wantRefusal: refusalTooManyHeaders},
		{name: "response with too many headers dropped", frame: withHeaders(okResponse, 200),
			want: actionDrop, wantRefusal: refusalTooManyHeaders},
		{name: "sdp at the limit", frame: withBody(registerMsg, "application/sdp", maxSDP),
			want: actionDeliver, wantCallID: "aiuy7k9njasd"},
		{name: "sdp over the limit", frame: withBody(registerMsg, "application/SDP; charset=utf-8", maxSDP+1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantStatus: 413, wantRefusal: refusalSDPTooLarge},
		{name: "multipart over the limit", frame: withBody(registerMsg, "multipart/mixed;boundary=x", maxSDP+1),
			want: actionReject, wantCallID: "aiuy7k9njasd", wantStatus: 413, wantRefusal: refusalSDPTooLarge},
		{name: "other body over the sdp limit", frame: withBody(registerMsg, "text/plain", maxSDP+1),
			want: actionDeliver, wantCallID: "aiuy7k9njasd"},
		{name: "response with large sdp dropped", frame: withBody(okResponse, "application/sdp", maxSDP+1),
			want: actionDrop, wantRefusal: refusalSDPTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := decodeFrame(parser, defaultFrameLimits, []byte(tt.frame))
			if res.action != tt.want {
				t.Fatalf("action = %v, want %v (err %v)", res.action, tt.want, res.err)
			}
			if res.refusal != tt.wantRefusal {
				t.Errorf("refusal = %v, want %v", res.refusal, tt.wantRefusal)
			}
			switch res.action {
			case actionDeliver:
				if got := res.msg.CallID().Value(); got != tt.wantCallID {
					t.Errorf("Call-ID = %q, want %q", got, tt.wantCallID)
				}
			case actionReject:
				resp := parseReply(t, res.reply)
				if want := cmp.Or(tt.wantStatus, 400); resp.StatusCode != want {
					t.Errorf("status = %d, want %d", resp.StatusCode, want)
				}
				if got := resp.CallID().Value(); got != tt.wantCallID {
					t.Errorf("reply Call-ID = %q, want %q", got, tt.wantCallID)
				}
				if resp.To().Params == nil || !resp.To().Params.Has("tag") {
					t.Errorf("reply To has no tag: %s", resp.To().Value())
				}
			case actionClose:
				if res.closeCode != tt.wantCode {
					t.Errorf("close code = %d, want %d", res.closeCode, tt.wantCode)
				}
				if len(res.closeReason) > maxCloseReason || !utf8.ValidString(res.closeReason) {
					t.Errorf("close reason %q is too long or not UTF-8", res.closeReason)
				}
				if !strings.Contains(res.closeReason, "invalid SIP message") {
					t.Errorf("close reason %q does not name the problem", res.closeReason)
				}
			}
		})
	}
}

func TestBadRequestCopiesHeaders(t *testing.T) {
	res := decodeFrame(sip.NewParser(), defaultFrameLimits, []byte(badMaxForwards))
	if res.action != actionReject {
		t.Fatalf("action = %v, want reject", res.action)
	}
	resp := parseReply(t, res.reply)
	vias := resp.GetHeaders("Via")
	if len(vias) != 2 {
		t.Fatalf("reply has %d Via headers, want 2:\n%s", len(vias), res.reply)
	}
	if got := resp.Via().Params.GetOr("branch", ""); got != "z9hG4bK776" {
		t.Errorf("top Via branch = %q, want z9hG4bK776", got)
	}
	if cseq := resp.CSeq(); cseq.SeqNo != 314159 || cseq.MethodName != sip.INVITE {
		t.Errorf("CSeq = %v, want 314159 INVITE", cseq.Value())
	}
	if tag, _ := resp.From().Params.Get("tag"); tag != "9fxced76sl" {
		t.Errorf("From tag = %q", tag)
	}
	warning := resp.GetHeader("Warning")
	if warning == nil || !strings.Contains(warning.Value(), "399 imsgate") {
		t.Errorf("Warning = %v, want a 399 warning naming the parse error", warning)
	}
}

func TestTruncateReason(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "short", in: "bye"},
		{name: "ascii long", in: strings.Repeat("a", 300)},
		{name: "multibyte at boundary", in: strings.Repeat("a", 122) + "é"},
		{name: "invalid utf8", in: "bad \xff byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncateReason(tt.in)
			if len(got) > maxCloseReason || !utf8.ValidString(got) {
				t.Errorf("truncateReason(%q) = %q", tt.in, got)
			}
		})
	}
}

func parseReply(t *testing.T, reply []byte) *sip.Response {
	t.Helper()
	msg, err := sip.NewParser().ParseSIP(reply)
	if err != nil {
		t.Fatalf("parse reply: %v\n%s", err, reply)
	}
	resp, ok := msg.(*sip.Response)
	if !ok {
		t.Fatalf("reply is not a response:\n%s", reply)
	}
	return resp
}

// Torture seeds typed after the style of RFC 4475 section 3.
var fuzzSeeds = []string{
	registerMsg,
	badMaxForwards,
	"\r\n\r\n",
	// 3.1.1.1 short tortuous INVITE: folding, odd spacing, compact forms.
	"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n" +
		"TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n" +
		"from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n" +
		"MaX-fOrWaRdS: 0068\r\n" +
		"Call-ID: wsinv.ndaksdj@192.0.2.1\r\n" +
		"Content-Length   : 0\r\n" +
		"cseq: 0009\r\n  INVITE\r\n" +
		"Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n" +
		"s :\r\n" +
		"NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n" +
		"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n" +
		" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n" +
		"m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n" +
		"  secondparam ; q = 0.33\r\n\r\n",
	// 3.1.2.1 extraneous header separators.
	"INVITE sip:user@example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\n" +
		"From: sip:caller@example.net;tag=134161461246\r\nMax-Forwards: 7\r\nCall-ID: badinv01.0ha0isndaksdjasdf3234nas\r\n" +
		"CSeq: 8 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\nContact: \"Joe\" <sip:joe@example.org>;;;;\r\n" +
		"Content-Length: 0\r\n\r\n",
	// 3.1.2.2 Content-Length larger than the message.
	"INVITE sip:user@example.com SIP/2.0\r\nMax-Forwards: 80\r\nTo: sip:j.user@example.com\r\n" +
		"From: sip:caller@example.net;tag=93942939o2\r\nContact: <sip:caller@hungry.example.net>\r\n" +
		"Call-ID: clerr.0ha0isndaksdjweiafasdk3\r\nCSeq: 8 INVITE\r\nVia: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: 9999\r\n\r\nv=0\r\n",
	// 3.1.2.4 request scalar fields with overlarge values.
	"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\r\n" +
		"To: <sip:user@example.com>\r\nFrom: <sip:user@example.com>;tag=239232jh3\r\nCSeq: 36893488147419103232 REGISTER\r\n" +
		"Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\nMax-Forwards: 300\r\nExpires: 1000000000000000000\r\n" +
		"Contact: <sip:user@host129.example.com>;expires=280297596632815\r\nContent-Length: 0\r\n\r\n",
	// 3.1.2.6 unterminated quoted string in display name.
	"INVITE sip:user@example.com SIP/2.0\r\nTo: sip:user@example.com\r\nFrom: \"Mr. J. User <sip:j.user@example.com>;tag=93334\r\n" +
		"Max-Forwards: 10\r\nCall-ID: quotbal.aksdj\r\nContact: <sip:j.user@host.example.com:5050>\r\nCSeq: 8 INVITE\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\r\nContent-Length: 0\r\n\r\n",
	// 3.1.2.11 CSeq method mismatch.
	"OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\nFrom: sip:caller@example.org;tag=39291\r\n" +
		"Max-Forwards: 23\r\nCall-ID: mismatch01.dj0234sxdfl3\r\nCSeq: 8 INVITE\r\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n" +
		"l: 0\r\n\r\n",
	// 3.1.2.16 response with an overlarge status code.
	"SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n" +
		"Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\r\nCSeq: 353494 INVITE\r\nFrom: <sip:user@example.com>;tag=39ansfi3\r\n" +
		"To: <sip:user@example.edu>;tag=8394\r\nContent-Length: 0\r\n\r\n",
	// 3.3.15 unknown protocol version, bare LF line ends.
	"OPTIONS sip:t.watson@example.org SIP/7.0\nVia: SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\nMax-Forwards: 70\n" +
		"From: A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\nTo: T. Watson <sip:t.watson@example.org>\n" +
		"Call-ID: badvers01.31414@c.example.com\nCSeq: 1 OPTIONS\nl: 0\n\n",
	"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
}

// tightFrameLimits make the limits' refusals reachable for small inputs.
var tightFrameLimits = frameLimits{maxHeaders: 6, maxSDPBytes: 8}

// FuzzFrame checks that no frame crashes decodeFrame and that every outcome
// is well formed, under the default limits and under tight ones: a
// delivered message has its mandatory headers, a reply is one well-framed
// response, and a close reason fits a close frame. The seeds include every
// RFC 4475 message in testdata/torture.
func FuzzFrame(f *testing.F) {
	addFrameSeeds(f)
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, lim := range []frameLimits{defaultFrameLimits, tightFrameLimits} {
			checkFrameResult(t, frame, decodeFrame(parser, lim, frame))
		}
	})
}

// addFrameSeeds seeds a frame fuzz target with fuzzSeeds and every RFC
// 4475 message.
func addFrameSeeds(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, m := range tortureCorpus(f) {
		f.Add(m.data)
	}
}

// checkFrameResult checks that res is a well-formed outcome for frame.
func checkFrameResult(t *testing.T, frame []byte, res frameResult) {
	t.Helper()
	switch res.action {
	case actionIgnore:
		if len(bytes.TrimSpace(frame)) != 0 || bytes.Equal(frame, keepalivePing) {
			t.Fatalf("frame %q ignored", frame)
		}
	case actionKeepalive:
		if !bytes.Equal(frame, keepalivePing) {
			t.Fatalf("frame %q taken for a keepalive", frame)
		}
	case actionDeliver:
		if err := checkMandatory(res.msg); err != nil {
			t.Fatalf("delivered message fails its check: %v", err)
		}
	case actionReject:
		checkReplyFraming(t, res.reply)
	case actionDrop:
	case actionClose:
		if len(res.closeReason) > maxCloseReason || !utf8.ValidString(res.closeReason) {
			t.Fatalf("bad close reason %q", res.closeReason)
		}
		want := websocket.CloseInvalidFramePayloadData
		if res.refusal == refusalRateClose {
			want = websocket.ClosePolicyViolation
		}
		if res.closeCode != want {
			t.Fatalf("close code %d for %v", res.closeCode, res.refusal)
		}
	default:
		t.Fatalf("action %v", res.action)
	}
	refused := res.action != actionDeliver && res.action != actionIgnore && res.action != actionKeepalive
	if refused != (res.err != nil) || refused != (res.refusal != refusalUnknown) {
		t.Fatalf("%v with error %v and refusal %v", res.action, res.err, res.refusal)
	}
	if res.err != nil && errors.Unwrap(res.err) == nil {
		t.Fatalf("error %v is not wrapped", res.err)
	}
}

// replyStart is the status line of every response the intake sends.
var replyStart = regexp.MustCompile(`^SIP/2\.0 (400|413|503|505) [A-Za-z ]+\r\n`)

// checkReplyFraming makes sure a reply cannot smuggle extra lines: every CR
// or LF belongs to a CRLF, the header section ends once, at the end.
func checkReplyFraming(t *testing.T, reply []byte) {
	t.Helper()
	if !replyStart.Match(reply) {
		t.Fatalf("reply start: %q", reply)
	}
	if !bytes.HasSuffix(reply, []byte("\r\n\r\n")) || bytes.Index(reply, []byte("\r\n\r\n")) != len(reply)-4 {
		t.Fatalf("reply framing: %q", reply)
	}
	stripped := bytes.ReplaceAll(reply, []byte("\r\n"), nil)
	if bytes.ContainsAny(stripped, "\r\n") {
		t.Fatalf("stray CR or LF in reply: %q", reply)
	}
	if !utf8.Valid(reply) {
		t.Fatalf("reply is not UTF-8: %q", reply)
	}
}
