package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/mediabridge"
)

// TestCoreDigitReachesBrowserAsInfo: a digit the media session read from
// the core's RFC 4733 reaches the browser as INFO application/dtmf-relay.
func TestCoreDigitReachesBrowserAsInfo(t *testing.T) {
	g, core, f := newWebRig(t)
	answeredCall(t, g, core, f)
	c := g.callByWeb(f.name, "web-call-1")
	c.enqueue(event{kind: evMedia, media: mediabridge.Event{Kind: mediabridge.EventDTMF,
		Digit: mediabridge.DTMFDigit{Event: 11, Duration: 160 * time.Millisecond}}})
	info := f.nextRequest(t)
	if info.Method != sip.INFO || headerValue(info, "Content-Type") != "application/dtmf-relay" {
		t.Fatalf("browser got %s (%s)", info.Method, headerValue(info, "Content-Type"))
	}
	if got := string(info.Body()); got != "Signal=#\r\nDuration=160\r\n" {
		t.Fatalf("body %q", got)
	}
	g.handleWeb(f, webReply(info, 200, ""))
	core.quiet(100 * time.Millisecond)
}

// coreAnswerWithEvents answers with PCMU and telephone-event at 8000.
const coreAnswerWithEvents = "v=0\r\no=core 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"

// dtmfCall is an answered browser call under dtmf.to_core mode, the core
// answering with sdp.
func dtmfCall(t *testing.T, mode, sdp string) (*Gateway, *rawCore, *fakeFlow) {
	t.Helper()
	noLeaks(t)
	core := newRawCore(t)
	g := newGatewayTo(t, core, func(cfg *configs.Config) { cfg.DTMF.ToCore = mode })
	f := newFakeFlow("f1")
	registerBrowser(t, g, core, f)
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", sdp))
	core.expect(sip.ACK)
	for f.expectStatus(t).StatusCode != 200 {
	}
	g.handleWeb(f, webRequest(t, f, "ACK", 1, ""))
	return g, core, f
}

// webInfo is the browser's INFO with a body of type ct.
func webInfo(t *testing.T, f *fakeFlow, cseq int, ct, body string) *sip.Request {
	req := webRequest(t, f, "INFO", cseq, "")
	req.AppendHeader(sip.NewHeader("Content-Type", ct))
	req.SetBody([]byte(body))
	return req
}

// TestBrowserDigitsToCore: the browser's digits, as INFO (either body)
// or RFC 4733 read by the media session, reach the core in the form
// dtmf.to_core says, each logged and counted once.
func TestBrowserDigitsToCore(t *testing.T) {
	tests := []struct {
		name      string
		mode, sdp string
		ct, body  string // an INFO; empty: an RFC 4733 digit
		wantInfo  bool   // the core gets an INFO
		wantCount string
	}{
		{"auto without events: INFO", "auto", coreAnswerSDP, "application/dtmf-relay", "Signal=5\r\nDuration=120\r\n", true, "web info -> core info"},
		{"auto with events: RFC 4733", "auto", coreAnswerWithEvents, "application/dtmf-relay", "Signal=5\r\nDuration=120\r\n", false, "web info -> core rfc4733"},
		{"application/dtmf body", "info", coreAnswerWithEvents, "application/dtmf", "5", true, "web info -> core info"},
		{"rfc4733 forced, core has none: INFO", "rfc4733", coreAnswerSDP, "application/dtmf-relay", "Signal=5\r\nDuration=120\r\n", true, "web info -> core info"},
		{"both", "both", coreAnswerWithEvents, "application/dtmf-relay", "Signal=5\r\nDuration=120\r\n", true, "web info -> core rfc4733"},
		{"inband into PCMU", "inband", coreAnswerSDP, "application/dtmf-relay", "Signal=5\r\nDuration=120\r\n", false, "web info -> core inband"},
		{"browser's RFC 4733 to an INFO core", "info", coreAnswerWithEvents, "", "", true, "web rfc4733 -> core info"},
		{"browser's RFC 4733 relayed", "auto", coreAnswerWithEvents, "", "", false, "web rfc4733 -> core rfc4733"},
		{"browser's RFC 4733 as tones", "inband", coreAnswerSDP, "", "", false, "web rfc4733 -> core inband"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, core, f := dtmfCall(t, tt.mode, tt.sdp)
			digit := mediabridge.DTMFDigit{Event: 5, Duration: 120 * time.Millisecond}
			if tt.ct != "" {
				g.handleWeb(f, webInfo(t, f, 2, tt.ct, tt.body))
			} else {
				c := g.callByWeb(f.name, "web-call-1")
				c.enqueue(event{kind: evMedia, media: mediabridge.Event{Kind: mediabridge.EventDTMF,
					From: mediabridge.LegWeb, Form: mediabridge.FormRFC4733, Digit: digit}})
			}
			if tt.wantInfo {
				info := core.expect(sip.INFO)
				if headerValue(info, "Content-Type") != "application/dtmf-relay" || !strings.HasPrefix(string(info.Body()), "Signal=5\r\nDuration=") {
					t.Fatalf("core got %s: %q", headerValue(info, "Content-Type"), info.Body())
				}
				core.send(reply(info, 200, "OK", "t1", "", ""))
			} else {
				core.quiet(100 * time.Millisecond)
			}
			if tt.ct != "" {
				if res := f.expectStatus(t); res.StatusCode != 200 || cseqMethod(res) != sip.INFO {
					t.Fatalf("browser got %d %s", res.StatusCode, cseqMethod(res))
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for g.DTMFCounts()[tt.wantCount] != 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := g.DTMFCounts(); got[tt.wantCount] != 1 {
				t.Fatalf("counts %v, want one %q", got, tt.wantCount)
			}
		})
	}
}

// TestCoreInfoReachesBrowserAsDTMFRelay: the core's INFO, in either DTMF
// body, reaches the browser as application/dtmf-relay; a bad DTMF body
// gets 400 and goes nowhere.
func TestCoreInfoReachesBrowserAsDTMFRelay(t *testing.T) {
	g, core, f := dtmfCall(t, "auto", coreAnswerSDP)
	_ = g
	c := g.callByWeb(f.name, "web-call-1")
	coreTag := c.core.dlg.localTag
	info := func(cseq int, ct, body string) string {
		return "INFO sip:x@" + core.addr() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + core.addr() + ";branch=z9hG4bKci" + itoa(cseq) + "\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:bob@imsgate.test>;tag=t1\r\nTo: <sip:alice@imsgate.test>;tag=" + coreTag + "\r\n" +
			"Call-ID: " + c.core.dlg.callID + "\r\nCSeq: " + itoa(cseq) + " INFO\r\nContent-Type: " + ct + "\r\n" +
			"Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	}
	core.sendTo(info(10, "application/dtmf", "#"), g.core.udpLocal.String())
	got := f.nextRequest(t)
	if got.Method != sip.INFO || headerValue(got, "Content-Type") != "application/dtmf-relay" || string(got.Body()) != "Signal=#\r\nDuration=100\r\n" {
		t.Fatalf("browser got %s %s %q", got.Method, headerValue(got, "Content-Type"), got.Body())
	}
	g.handleWeb(f, webReply(got, 200, ""))
	if res := core.expectResponse(); res.StatusCode != 200 {
		t.Fatalf("core got %d", res.StatusCode)
	}
	core.sendTo(info(11, "application/dtmf-relay", "Signal=Z\r\n"), g.core.udpLocal.String())
	if res := core.expectResponse(); res.StatusCode != 400 {
		t.Fatalf("bad body: core got %d, want 400", res.StatusCode)
	}
	if n := g.DTMFCounts()["core info -> web info"]; n != 1 {
		t.Fatalf("counted %d", n)
	}
}
