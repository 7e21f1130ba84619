package b2bua

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/listenpair"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/mediabridge"
)

// The b2bua tests run with short RFC 3261 timers (T1 20 ms: 64·T1 is
// 1.28 s) so retransmission and timeout paths finish quickly.
func TestMain(m *testing.M) {
	sip.SetTimers(20*time.Millisecond, 80*time.Millisecond, 100*time.Millisecond)
	os.Exit(m.Run())
}

// rawCore is a core the test drives message by message over UDP and TCP
// on one port: it can drop, repeat and forge what a real core would send.
type rawCore struct {
	t    testing.TB
	udp  net.PacketConn
	tcp  net.Listener
	msgs chan rawMsg
	mu   sync.Mutex
	gw   net.Addr // where the gateway's UDP messages come from
	tcpc []net.Conn
	// seen are the requests next returned, by branch and method: a UAS
	// absorbs their retransmissions (RFC 3261 17.2), which a T1 of 20 ms
	// brings whenever the test answers a little late.
	seen map[string]bool
}

type rawMsg struct {
	msg       sip.Message
	transport string
	size      int
}

func newRawCore(t testing.TB) *rawCore {
	t.Helper()
	udp, tcp := bindUDPAndTCP(t)
	c := &rawCore{t: t, udp: udp, tcp: tcp, msgs: make(chan rawMsg, 256)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.gw = from
			c.mu.Unlock()
			c.deliver(buf[:n], "UDP")
		}
	}()
	go func() {
		defer wg.Done()
		for {
			conn, err := tcp.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.tcpc = append(c.tcpc, conn)
			c.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				parser := sip.NewParser()
				sp := parser.NewSIPStream()
				buf := make([]byte, 65535)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					_ = sp.ParseSIPStream(buf[:n], func(m sip.Message) {
						select {
						case c.msgs <- rawMsg{msg: m, transport: "TCP", size: len(m.String())}:
						default:
						}
					})
				}
			}()
		}
	}()
	t.Cleanup(func() {
		udp.Close()
		tcp.Close()
		c.mu.Lock()
		for _, conn := range c.tcpc {
			conn.Close()
		}
		c.mu.Unlock()
		wg.Wait()
	})
	return c
}

func (c *rawCore) deliver(data []byte, transport string) {
	m, err := sip.ParseMessage(append([]byte(nil), data...))
	if err != nil {
		c.t.Errorf("core got unparsable message: %v", err)
		return
	}
	select {
	case c.msgs <- rawMsg{msg: m, transport: transport, size: len(data)}:
	default: // a test that reads nothing loses the surplus, not its reader
	}
}

func (c *rawCore) addr() string { return c.udp.LocalAddr().String() }

// next returns the next message that is neither a 100 Trying nor a
// retransmission of a request it returned before, within d.
func (c *rawCore) next(d time.Duration) (rawMsg, bool) {
	deadline := time.After(d)
	for {
		select {
		case m := <-c.msgs:
			if res, ok := m.msg.(*sip.Response); ok && res.StatusCode == 100 {
				continue
			}
			if req, ok := m.msg.(*sip.Request); ok && !req.IsAck() {
				key := branchOf(req) + string(req.Method)
				if c.seen[key] {
					continue
				}
				if c.seen == nil {
					c.seen = map[string]bool{}
				}
				c.seen[key] = true
			}
			return m, true
		case <-deadline:
			return rawMsg{}, false
		}
	}
}

// expect returns the next request of a method, failing on anything else.
func (c *rawCore) expect(method sip.RequestMethod) *sip.Request {
	c.t.Helper()
	m, ok := c.next(5 * time.Second)
	if !ok {
		c.t.Fatalf("core: no %s arrived", method)
	}
	req, isReq := m.msg.(*sip.Request)
	if !isReq || req.Method != method {
		c.t.Fatalf("core: got %s, want %s", startLine(m.msg), method)
	}
	return req
}

// expectResponse returns the next response, failing on anything else.
func (c *rawCore) expectResponse() *sip.Response {
	c.t.Helper()
	m, ok := c.next(5 * time.Second)
	if !ok {
		c.t.Fatal("core: no response arrived")
	}
	res, isRes := m.msg.(*sip.Response)
	if !isRes {
		c.t.Fatalf("core: got %s, want a response", startLine(m.msg))
	}
	return res
}

// expectFinal returns the final response to the request with this CSeq,
// skipping retransmissions of earlier answers.
func (c *rawCore) expectFinal(seq uint32, method sip.RequestMethod) *sip.Response {
	c.t.Helper()
	for {
		res := c.expectResponse()
		if n, m := cseqOf(res); n == seq && m == method && res.StatusCode >= 200 {
			return res
		}
	}
}

// quiet checks that nothing but what skip allows arrives for d.
func (c *rawCore) quiet(d time.Duration) {
	c.t.Helper()
	if m, ok := c.next(d); ok {
		c.t.Fatalf("core: unexpected %s", startLine(m.msg))
	}
}

// sendQuiet is send for a goroutine other than the test's: a failure
// loses the message, as UDP would.
func (c *rawCore) sendQuiet(raw string) {
	c.mu.Lock()
	to := c.gw
	c.mu.Unlock()
	if to != nil {
		_, _ = c.udp.WriteTo([]byte(raw), to)
	}
}

// send writes raw SIP to the gateway's UDP socket.
func (c *rawCore) send(raw string) {
	c.t.Helper()
	c.mu.Lock()
	to := c.gw
	c.mu.Unlock()
	if to == nil {
		c.t.Fatal("core: the gateway has sent nothing yet")
	}
	if _, err := c.udp.WriteTo([]byte(raw), to); err != nil {
		c.t.Fatal(err)
	}
}

// sendTCP writes raw SIP on the last TCP connection the gateway opened.
func (c *rawCore) sendTCP(raw string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tcpc) == 0 {
		c.t.Fatal("core: the gateway opened no TCP connection")
	}
	if _, err := c.tcpc[len(c.tcpc)-1].Write([]byte(raw)); err != nil {
		c.t.Fatal(err)
	}
}

// sendTo writes raw SIP to an address (the gateway before it spoke).
func (c *rawCore) sendTo(raw string, to string) {
	c.t.Helper()
	addr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.udp.WriteTo([]byte(raw), addr); err != nil {
		c.t.Fatal(err)
	}
}

// reply builds a response to req as the core would: its Via, From, To (with
// a tag), Call-ID and CSeq, and extra lines and an SDP body.
func reply(req *sip.Request, code int, reason, toTag, extra, sdp string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range req.GetHeaders("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", h.Value())
	}
	fmt.Fprintf(&b, "From: %s\r\n", req.From().Value())
	to := req.To().Value()
	if toTag != "" && !strings.Contains(to, "tag=") {
		to += ";tag=" + toTag
	}
	fmt.Fprintf(&b, "To: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", to, req.CallID().Value(), req.CSeq().Value())
	b.WriteString(extra)
	if sdp != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	return b.String()
}

// coreAnswerSDP answers the gateway's RTP/AVP offer with PCMU.
const coreAnswerSDP = "v=0\r\no=core 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"

// coreOfferSDP is a PBX's G.711 offer.
const coreOfferSDP = "v=0\r\no=core 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 30002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"

// newGatewayTo runs a gateway whose upstream is the raw core.
func newGatewayTo(t testing.TB, core *rawCore, change func(*configs.Config)) *Gateway {
	t.Helper()
	return newGatewayToWith(t, "sip:"+core.addr(), change)
}

// newGatewayToWith is newGatewayTo for any upstream.proxy, with options.
func newGatewayToWith(t testing.TB, proxy string, change func(*configs.Config), opts ...Option) *Gateway {
	t.Helper()
	cfg := configs.Default()
	cfg.Upstream.Proxy = proxy
	cfg.Upstream.InviteTimeout = 5 * time.Second
	cfg.Upstream.KeepaliveInterval = 0 // the raw core sees only what a test sends (upstream_test.go tests the keepalive)
	cfg.Media.WebRTCPort = 0
	cfg.Media.RTPPorts = "43000-43999"
	if change != nil {
		change(&cfg)
	}
	log := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.InfoLevel))
	}
	media, err := mediabridge.NewEngine(cfg.Media, log)
	if err != nil {
		t.Fatal(err)
	}
	pc, ln := bindUDPAndTCP(t)
	g, err := New(cfg, media, pc, ln, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		media.Close()
	})
	return g
}

// webInvite is a browser's INVITE with a Chrome offer.
func webInvite(callID, branch string, extra string) *sip.Request {
	raw := "INVITE sip:bob@imsgate.test SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS x.invalid;branch=z9hG4bK" + branch + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=f1\r\nTo: <sip:bob@imsgate.test>\r\n" +
		"Contact: <sip:a1@x.invalid;transport=ws>\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" + extra +
		"Content-Type: application/sdp\r\nContent-Length: " + itoa(len(chromeOfferForTest)) + "\r\n\r\n" + chromeOfferForTest
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		panic(err)
	}
	return msg.(*sip.Request)
}

// nextMsg returns the next message the gateway wrote to a fake browser.
func (f *fakeFlow) nextMsg(t testing.TB) sip.Message {
	t.Helper()
	select {
	case m := <-f.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached the browser")
	}
	return nil
}

// expectStatus skips 100 Trying and returns the next response's status.
func (f *fakeFlow) expectStatus(t testing.TB) *sip.Response {
	t.Helper()
	for {
		res := f.next(t)
		if res.StatusCode != 100 {
			return res
		}
	}
}

func startLine(m sip.Message) string {
	switch v := m.(type) {
	case *sip.Request:
		return v.StartLine()
	case *sip.Response:
		return v.StartLine()
	}
	return "?"
}

// attach lets the gateway find fake browsers by flow, as sipws would.
func attach(g *Gateway, flows ...*fakeFlow) {
	byName := map[string]webFlow{}
	for _, f := range flows {
		byName[f.name] = f
	}
	lookup := flowLookup(func(name string) (webFlow, bool) {
		f, ok := byName[name]
		return f, ok
	})
	g.flows.Store(&lookup)
}

// bindUDPAndTCP binds one loopback port for UDP and TCP.
func bindUDPAndTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	u, l, err := listenpair.UDPAndTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return u, l
}
