package b2bua

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"

	"github.com/imsgate/imsgate/configs"
)

// fakeFlow records what the gateway writes to a browser.
type fakeFlow struct {
	name string
	mu   sync.Mutex
	out  []sip.Message
	got  chan sip.Message
	done chan struct{}
	// closed is the WebSocket close the gateway asked for, if any.
	closed chan string
}

func newFakeFlow(name string) *fakeFlow {
	return &fakeFlow{name: name, got: make(chan sip.Message, 64), done: make(chan struct{}), closed: make(chan string, 1)}
}

// Close records the close the gateway asked for (sipws.Conn.Close).
func (f *fakeFlow) Close(code int, reason string) {
	select {
	case f.closed <- fmt.Sprintf("%d %s", code, reason):
	default:
	}
}

func (f *fakeFlow) Flow() string          { return f.name }
func (f *fakeFlow) Transport() string     { return "WS" }
func (f *fakeFlow) Done() <-chan struct{} { return f.done }
func (f *fakeFlow) WriteMessage(m sip.Message) error {
	f.mu.Lock()
	f.out = append(f.out, m)
	f.mu.Unlock()
	select {
	case f.got <- m:
	default:
	}
	return nil
}

// next returns the next response written, failing after a deadline.
func (f *fakeFlow) next(t testing.TB) *sip.Response {
	t.Helper()
	select {
	case m := <-f.got:
		res, ok := m.(*sip.Response)
		if !ok {
			t.Fatalf("gateway sent a request: %s", m)
		}
		return res
	case <-time.After(5 * time.Second):
		t.Fatal("no response from the gateway")
	}
	return nil
}

// newTestGateway runs a gateway whose core answers only what the test has
// it answer (registerBrowser), so every other core transaction times out
// quickly.
func newTestGateway(t testing.TB) (*Gateway, *rawCore) {
	t.Helper()
	core := newRawCore(t)
	return newGatewayTo(t, core, func(c *configs.Config) {
		c.Upstream.InviteTimeout = 200 * time.Millisecond
		c.Media.RTPPorts = "42000-42999"
	}), core
}

func req(method, extra, body string) string {
	s := method + " sip:echo@imsgate.test SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS x.invalid;branch=z9hG4bK" + strings.ToLower(method) + "1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=f1\r\n" +
		"Call-ID: web-" + strings.ToLower(method) + "\r\nCSeq: 1 " + method + "\r\n" + extra
	if body != "" {
		s += "Content-Type: application/sdp\r\n"
	}
	return s + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{digits[n%10]}, b...)
		n /= 10
	}
	return string(b)
}

func TestWebRequestAnswers(t *testing.T) {
	noLeaks(t)
	g, core := newTestGateway(t)
	noCodecSDP := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 98\r\na=rtpmap:98 AMR/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
		"a=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\n"
	cases := []struct {
		name       string
		registered bool // the flow registered alice first
		raw        string
		codes      []int
	}{
		{"options answered locally", false, req("OPTIONS", "To: <sip:echo@imsgate.test>\r\n", ""), []int{200}},
		{"SUBSCRIBE without Contact", true, req("SUBSCRIBE", "To: <sip:echo@imsgate.test>\r\nEvent: presence\r\n", ""), []int{400}},
		{"BYE for no call", false, req("BYE", "To: <sip:echo@imsgate.test>;tag=t9\r\n", ""), []int{481}},
		{"CANCEL for no call", false, req("CANCEL", "To: <sip:echo@imsgate.test>\r\n", ""), []int{481}},
		{"INVITE without offer goes on (third-party call control)", true, req("INVITE", "To: <sip:echo@imsgate.test>\r\n", ""), []int{100, 408}},
		{"INVITE with no usable codec", true, req("INVITE", "To: <sip:echo@imsgate.test>\r\n", noCodecSDP), []int{100, 488}},
		{"INVITE the core never answers", true, req("INVITE", "To: <sip:echo@imsgate.test>\r\n", chromeOfferForTest), []int{100, 408}},
		{"INVITE before REGISTER", false, req("INVITE", "To: <sip:echo@imsgate.test>\r\n", chromeOfferForTest), []int{403}},
	}
	flows := map[string]*fakeFlow{}
	for _, tc := range cases {
		flows[tc.name] = newFakeFlow("f-" + tc.name)
		if tc.registered { // before any INVITE: the core answers in order
			registerBrowser(t, g, core, flows[tc.name])
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := flows[tc.name]
			msg, err := sip.ParseMessage([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			g.handleWeb(f, msg)
			for _, want := range tc.codes {
				res := f.next(t)
				if res.StatusCode != want {
					t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, want)
				}
				if (want == 488 || want == 403) && res.GetHeader("Warning") == nil {
					t.Fatalf("%d must say why in a Warning header", want)
				}
			}
		})
	}
	if g.Calls() != 0 {
		t.Fatalf("calls left: %d", g.Calls())
	}
}

func TestUnmatchedResponseIgnored(t *testing.T) {
	g, _ := newTestGateway(t)
	f := newFakeFlow("f1")
	msg, err := sip.ParseMessage([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKnope\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	g.handleWeb(f, msg)
	select {
	case m := <-f.got:
		t.Fatalf("gateway answered a stray response: %s", m)
	case <-time.After(50 * time.Millisecond):
	}
}

// FuzzHandleWeb feeds whatever parses as SIP to the gateway's web side: it
// must answer or drop, never crash.
func FuzzHandleWeb(f *testing.F) {
	f.Add([]byte(req("OPTIONS", "To: <sip:echo@imsgate.test>\r\n", "")))
	f.Add([]byte(req("BYE", "To: <sip:echo@imsgate.test>;tag=t9\r\n", "")))
	f.Add([]byte(req("INVITE", "To: <sip:echo@imsgate.test>\r\n", "v=0\r\n")))
	f.Add([]byte(strings.ReplaceAll(jssipRegister, "\n", "\r\n")))
	f.Add([]byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/WSS x;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n"))
	g, core := newTestGateway(f)
	// The flow is registered as alice (the seeds' From), so what is fuzzed
	// goes past the 403 every unregistered flow gets.
	registerBrowser(f, g, core, newFakeFlow("fuzz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		g.handleWeb(newFakeFlow("fuzz"), msg)
	})
}

// chromeOfferForTest is a Chrome audio offer (testdata/chrome-offer.sdp).
var chromeOfferForTest = func() string {
	b, err := os.ReadFile("testdata/chrome-offer.sdp")
	if err != nil {
		panic(err)
	}
	return strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")
}()

// noLeaks checks, after every cleanup of the test has run, that no goroutine
// the test started is left.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}
