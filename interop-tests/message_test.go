//go:build interop

package interop

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/metrics/metricstest"
	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Instant messages (RFC 3428) outside any dialog, through the gateway and
// Kamailio. A browser's MESSAGE goes to Kamailio as the gateway's own
// request; Kamailio challenges it (407) and the browser answers the
// challenge itself through the gateway. Kamailio looks the target up and
// relays to the gateway's Contact for it (forking to every binding), and
// the gateway hands it to the browser that Contact names; each final
// status goes back the same way.

const (
	messageType    = "text/plain;charset=UTF-8"
	messageMaxBody = 1024 // presence.max_body_bytes in the tests' gateway
	helloText      = "héllo ✓ 你好"
)

// pageMessage is a page's message_in detail (common.js harness.message).
type pageMessage struct {
	From        string `json:"from"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// messages lists the messages the page reported, in order.
func (r browserResult) messages(t *testing.T) []pageMessage {
	t.Helper()
	var out []pageMessage
	for _, d := range r.details("message_in") {
		var m pageMessage
		if err := json.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("message_in detail %q: %v", d, err)
		}
		out = append(out, m)
	}
	return out
}

// newMessageEnv: Kamailio, the gateway with a small presence.max_body_bytes,
// and the test pages served.
func newMessageEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kamailio: startKamailio(t)}
	cfg := gatewayConfig("udp") + "presence:\n  max_body_bytes: " + strconv.Itoa(messageMaxBody) + "\n"
	e.gateway = startGateway(t, cfg, repoRoot())
	e.pageBase = startStaticServer(t)
	return e
}

// messageOptions: user's page on lib (jssip, sipjs) running a message-*
// scenario; it sends text to sip:<target>@imsgate.test.
func (e *env) messageOptions(lib, scenario, user, target, text string) browserOptions {
	opts := e.browserOptions(lib, lib+".html", scenario, user, "sip:"+target+"@imsgate.test")
	opts.Name = user + "-" + lib
	opts.Text, opts.ContentType = text, messageType
	return opts
}

// startRegistered starts a page (messageOptions's arguments) and waits
// until it has registered, so that messages can reach it.
func (e *env) startRegistered(t *testing.T, lib, scenario, user, target, text string) *browser {
	t.Helper()
	b := startBrowser(t, e.messageOptions(lib, scenario, user, target, text))
	b.waitEvent(t, "registered", 30*time.Second)
	return b
}

// requireMessage: the page reported one message, from with body, of
// messageType, exactly as sent.
func (e *env) requireMessage(t *testing.T, r browserResult, from, body string) {
	t.Helper()
	got := r.messages(t)
	for _, m := range got {
		t.Logf("%s reported a message from %s, %s: %q", r.Library, m.From, m.ContentType, m.Body)
	}
	want := pageMessage{From: from, ContentType: messageType, Body: body}
	if len(got) != 1 || got[0] != want {
		e.failf(t, r, "the page reported messages %+v, want one %+v", got, want)
	}
}

// requireMessageSent: the page's MESSAGE was challenged by Kamailio (407),
// sent again with credentials, and its final status was 200.
func (e *env) requireMessageSent(t *testing.T, r browserResult) {
	t.Helper()
	sent := r.details("message_sent")
	i407 := indexSIP(r.SIP, "< SIP/2.0 407 Proxy Authentication Required (MESSAGE)")
	i200 := indexSIP(r.SIP, "< SIP/2.0 200 OK (MESSAGE)")
	t.Logf("%s: MESSAGE sent %d times, 407 at frame %d, 200 at frame %d; final status %q",
		r.Library, countSIP(r.SIP, "> MESSAGE"), i407, i200, sent)
	if len(sent) != 1 || sent[0] != "200" {
		e.failf(t, r, "the page's MESSAGE ended %q (failed: %q), want 200", sent, r.details("message_failed"))
	}
	if i407 < 0 || i200 < i407 || countSIP(r.SIP, "> MESSAGE") != 2 {
		e.failf(t, r, "want MESSAGE, 407, MESSAGE with credentials, 200 on the WebSocket")
	}
}

// logRelayed shows the gateway's account of each MESSAGE it relayed.
func logRelayed(t *testing.T, gw *proc) {
	t.Helper()
	for _, l := range strings.Split(gw.log(), "\n") {
		if strings.Contains(l, "message relayed") {
			t.Logf("imsgate: %s", l[strings.Index(l, "message relayed"):])
		}
	}
}

// TestMessage_jssip_to_sipjs: alice (JsSIP, ua.sendMessage) sends bob
// (SIP.js, UserAgent delegate onMessage) a UTF-8 text; bob answers with a
// SIP.js Messager, which alice's 'newMessage' reports. Both see their
// MESSAGE challenged, then 200.
func TestMessage_jssip_to_sipjs(t *testing.T) {
	const reply = "bien reçu ✓ 收到"
	e := newMessageEnv(t)
	bob := e.startRegistered(t, "sipjs", "message-answer", "bob", "alice", reply)
	alice := startBrowser(t, e.messageOptions("jssip", "message-chat", "alice", "bob", helloText))
	a := alice.waitResult(t, browserBudget)
	b := bob.waitResult(t, browserBudget)
	logRelayed(t, e.gateway)
	e.requireOK(t, a, "registered", "message_sent", "message_in")
	e.requireOK(t, b, "registered", "message_in", "message_sent")
	e.requireMessage(t, b, "sip:alice@imsgate.test", helloText)
	e.requireMessageSent(t, a)
	e.requireMessage(t, a, "sip:bob@imsgate.test", reply)
	e.requireMessageSent(t, b)
	// Each page's MESSAGE went to Kamailio (challenged, then 200) and came
	// back from it to the other page (200).
	_, body := scrape(t, "")
	families, err := metricstest.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	toCore, _ := families.Sum("imsgate_messages_total", map[string]string{"direction": "web_to_core", "outcome": "2xx"})
	toWeb, _ := families.Sum("imsgate_messages_total", map[string]string{"direction": "core_to_web", "outcome": "2xx"})
	t.Logf("/metrics: MESSAGEs web to core 2xx %v, core to web 2xx %v", toCore, toWeb)
	if toCore < 2 || toWeb < 2 {
		e.failf(t, a, "imsgate_messages_total: web_to_core 2xx %v, core_to_web 2xx %v; want 2 each", toCore, toWeb)
	}
}

// TestMessageToTwoDevices: carol is registered from a SIP.js page and from
// the Go webua; Kamailio forks alice's MESSAGE to both bindings and each
// device gets it; alice gets 200.
func TestMessageToTwoDevices(t *testing.T) {
	e := newMessageEnv(t)
	page := e.startRegistered(t, "sipjs", "message-receive", "carol", "", "")
	ua := dialWebUA(t, "sip:carol@imsgate.test")
	registerWebUA(t, e.gateway, ua)
	a := startBrowser(t, e.messageOptions("jssip", "message-send", "alice", "carol", helloText)).waitResult(t, browserBudget)
	e.requireOK(t, a, "registered", "message_sent")
	e.requireMessageSent(t, a)
	c := page.waitResult(t, browserBudget)
	logRelayed(t, e.gateway)
	e.requireOK(t, c, "registered", "message_in")
	e.requireMessage(t, c, "sip:alice@imsgate.test", helloText)
	select {
	case m, ok := <-ua.Messages():
		t.Logf("webua got a message from %s, %s: %q", m.From, m.ContentType, m.Body)
		if !ok {
			failGateway(t, e.gateway, "the webua's WebSocket closed before any message")
		}
		if want := (webua.Message{From: "sip:alice@imsgate.test", ContentType: messageType, Body: helloText}); m != want {
			failGateway(t, e.gateway, "the webua got %+v, want %+v", m, want)
		}
	case <-time.After(10 * time.Second):
		failGateway(t, e.gateway, "the webua (carol's second device) got no message")
	}
}

// TestMessageFromSIPp: SIPp sends carol (JsSIP) two MESSAGEs through
// Kamailio: one with a body above presence.max_body_bytes, which the
// gateway must refuse with 413 without delivering it, then a short text,
// which the page reports and answers 200.
func TestMessageFromSIPp(t *testing.T) {
	const text = helloText + " from SIPp"
	e := newMessageEnv(t)
	page := e.startRegistered(t, "jssip", "message-receive", "carol", "", "")
	big := strings.Repeat("x", 2*messageMaxBody)
	uac := startSIPpUAC(t, "uac_message.xml", "carol", 0, "-key", "text", text, "-key", "big", big)
	requireSIPpDone(t, e.gateway, uac, 30*time.Second)
	r := page.waitResult(t, browserBudget)
	logRelayed(t, e.gateway)
	for _, m := range readSIPpTrace(t, "sipp-uac-messages.log").filter(sippReceived, "SIP/2.0 ", "MESSAGE") {
		t.Logf("SIPp got %s (CSeq %s)", m.first, m.header("CSeq"))
	}
	e.requireOK(t, r, "registered", "message_in")
	// SIPp ends the body's last line with CRLF.
	e.requireMessage(t, r, "sip:sipp@imsgate.test", text+"\r\n")
}
