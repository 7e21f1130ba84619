package b2bua

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/mediabridge"
)

// newRawRig is a gateway in front of a raw core, a fake browser flow, and
// a leak check when the test ends.
func newRawRig(t *testing.T) (*Gateway, *rawCore, *fakeFlow) {
	t.Helper()
	noLeaks(t)
	core := newRawCore(t)
	return newGatewayTo(t, core, nil), core, newFakeFlow("f1")
}

// newWebRig is newRawRig with the browser registered as alice: only then
// does the gateway relay its calls and requests (identity.go).
func newWebRig(t *testing.T) (*Gateway, *rawCore, *fakeFlow) {
	t.Helper()
	g, core, f := newRawRig(t)
	registerBrowser(t, g, core, f)
	return g, core, f
}

// callToCore starts a browser call and answers it at the raw core with a
// 200 (to-tag "t1"); it returns the core's INVITE and the first ACK.
func callToCore(t *testing.T, g *Gateway, core *rawCore, f *fakeFlow) (*sip.Request, *sip.Request) {
	t.Helper()
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 180, "Ringing", "t1", "", ""))
	// sipgo takes each response on a goroutine of its own: a 200 sent at
	// once could overtake the 180.
	if res := f.expectStatus(t); res.StatusCode != 180 {
		t.Fatalf("browser got %d, want 180", res.StatusCode)
	}
	ok := reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", coreAnswerSDP)
	core.send(ok)
	ack := core.expect(sip.ACK)
	if got := tagOf(ack.To().Params); got != "t1" {
		t.Fatalf("ACK to-tag %q, want t1", got)
	}
	for {
		res := f.expectStatus(t)
		if res.StatusCode == 200 {
			break
		}
	}
	return inv, ack
}

func TestRetransmitted2xxIsAckedAgain(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := callToCore(t, g, core, f)
	// The first ACK was lost: the core retransmits its 2xx, twice.
	for i := 0; i < 2; i++ {
		core.send(reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", coreAnswerSDP))
		again := core.expect(sip.ACK)
		if branchOf(again) != branchOf(ack) || cseqNo(again) != cseqNo(inv) {
			t.Fatalf("re-sent ACK differs: %s", again)
		}
	}
	if g.Calls() != 1 {
		t.Fatalf("calls = %d, want the call up", g.Calls())
	}
}

func TestSecondFork2xxIsAckedAndEnded(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, _ := callToCore(t, g, core, f)
	core.send(reply(inv, 200, "OK", "t2", "Contact: <sip:bob2@"+core.addr()+">\r\n", coreAnswerSDP))
	ack := core.expect(sip.ACK)
	bye := core.expect(sip.BYE)
	for _, req := range []*sip.Request{ack, bye} {
		if got := tagOf(req.To().Params); got != "t2" {
			t.Fatalf("%s to-tag %q, want the second fork's t2", req.Method, got)
		}
		if req.Recipient.User != "bob2" {
			t.Fatalf("%s goes to %s, want the second fork's Contact", req.Method, req.Recipient.String())
		}
	}
	core.send(reply(bye, 200, "OK", "", "", ""))
	if g.Calls() != 1 {
		t.Fatal("the first fork's call must stay up")
	}
	// The browser saw one answer only.
	select {
	case m := <-f.got:
		t.Fatalf("browser got %s", startLine(m))
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBrowserNeverAcks(t *testing.T) {
	g, core, _ := newRawRig(t)
	f := callFromCore(t, g, core, "core-call-1", "")
	// The core never ACKs: our 200 is retransmitted, T1 doubling to T2.
	var at []time.Time
	for len(at) < 4 {
		res := core.expectResponse()
		if res.StatusCode == 200 {
			at = append(at, time.Now())
		}
	}
	if gap := at[3].Sub(at[2]); gap < sip.T1 {
		t.Fatalf("retransmissions %v apart, want the interval to grow", gap)
	}
	// After 64·T1 both legs get a BYE.
	deadline := time.After(64*sip.T1 + 2*time.Second)
	gotCoreBye, gotWebBye := false, false
	for !gotCoreBye || !gotWebBye {
		select {
		case m := <-core.msgs:
			if req, ok := m.msg.(*sip.Request); ok && req.Method == sip.BYE {
				gotCoreBye = true
			}
		case m := <-f.got:
			if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
				gotWebBye = true
			}
		case <-deadline:
			t.Fatalf("after 64·T1: BYE to core %v, to browser %v", gotCoreBye, gotWebBye)
		}
	}
	waitCalls(t, g, 0)
}

func TestAckStopsOur2xxRetransmissions(t *testing.T) {
	g, core, _ := newRawRig(t)
	callFromCore(t, g, core, "core-call-2", "")
	var ok *sip.Response
	for ok == nil {
		if res := core.expectResponse(); res.StatusCode == 200 {
			ok = res
		}
	}
	// The first 200 was "lost": the core sees a retransmission, then ACKs.
	for {
		if res := core.expectResponse(); res.StatusCode == 200 {
			break
		}
	}
	core.send(ackFor(ok, core.addr()))
	// Drain what was already in flight, then nothing more.
	time.Sleep(2 * sip.T2)
	for len(core.msgs) > 0 {
		<-core.msgs
	}
	core.quiet(4 * sip.T2)
	if g.Calls() != 1 {
		t.Fatal("the call must stay up once acknowledged")
	}
}

func TestCancelWithoutFinalResponse(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-cancel", "inv2", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 180, "Ringing", "t1", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 180 {
		t.Fatalf("browser got %d, want 180", res.StatusCode)
	}
	cancel := strings.Replace(webInvite("web-cancel", "inv2", "").String(), "INVITE sip:", "CANCEL sip:", 1)
	cancel = strings.Replace(cancel, "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
	msg, err := sip.ParseMessage([]byte(cancel))
	if err != nil {
		t.Fatal(err)
	}
	msg.(*sip.Request).SetBody(nil)
	g.handleWeb(f, msg)
	c := core.expect(sip.CANCEL)
	core.send(reply(c, 200, "OK", "", "", ""))
	engine := g.media.(*mediabridge.Engine)
	if n := engine.PortPairsInUse(); n != 1 {
		t.Fatalf("%d port pairs in use while the INVITE is pending, want 1", n)
	}
	// The core never sends its 487: the call ends 64·T1 after the CANCEL.
	start := time.Now()
	waitCalls(t, g, 0)
	waitEnded(t, g, 64*sip.T1+2*time.Second)
	if took := time.Since(start); took < 64*sip.T1-100*time.Millisecond {
		t.Fatalf("ended %v after the CANCEL, want about 64·T1 (%v)", took, 64*sip.T1)
	}
	if n := engine.PortPairsInUse(); n != 0 {
		t.Fatalf("%d port pairs still in use after the call ended", n)
	}
}

func TestLargeInviteGoesOverTCP(t *testing.T) {
	g, core, f := newWebRig(t)
	long := "P-Preferred-Identity: <sip:alice@imsgate.test>\r\nSubject: " + strings.Repeat("x", 2100) + "\r\n"
	g.handleWeb(f, webInvite("web-big", "inv3", long))
	m, ok := core.next(5 * time.Second)
	if !ok {
		t.Fatal("no INVITE reached the core")
	}
	if m.transport != "TCP" || m.msg.(*sip.Request).Method != sip.INVITE {
		t.Fatalf("got %s over %s (%d bytes), want the INVITE over TCP", startLine(m.msg), m.transport, m.size)
	}
	via := m.msg.(*sip.Request).Via()
	if via.Transport != "TCP" {
		t.Fatalf("Via says %s, want TCP", via.Transport)
	}
	if !via.Params.Has("rport") {
		t.Fatal("our Via must carry rport (RFC 3581)")
	}
	t.Logf("INVITE of %d bytes arrived over TCP", m.size)
	inv := m.msg.(*sip.Request)
	core.sendTCP(reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", coreAnswerSDP))
	core.expect(sip.ACK)
	if res := f.expectStatus(t); res.StatusCode != 200 {
		t.Fatalf("browser got %d, want 200", res.StatusCode)
	}
	waitCalls(t, g, 1)
}

func TestUnsupportedRequire(t *testing.T) {
	g, _, f := newRawRig(t)
	g.handleWeb(f, webInvite("web-require", "inv4", "Require: 100rel, foo\r\n"))
	res := f.next(t)
	if res.StatusCode != 420 {
		t.Fatalf("got %d, want 420", res.StatusCode)
	}
	if u := res.GetHeader("Unsupported"); u == nil || !strings.Contains(u.Value(), "foo") {
		t.Fatalf("420 must name the extensions: %v", u)
	}
}

func TestRedirectKeepsContact(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-302", "inv5", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 302, "Moved Temporarily", "t1", "Contact: <sip:carol@elsewhere.test>\r\n", ""))
	res := f.expectStatus(t)
	if res.StatusCode != 302 || res.Contact() == nil || res.Contact().Address.User != "carol" {
		t.Fatalf("browser got %d with Contact %v, want 302 with the core's Contact", res.StatusCode, res.Contact())
	}
	core.expect(sip.ACK) // sipgo acknowledges the 302
	waitEnded(t, g, 2*time.Second)
}

// TestSameCallIDManyFlows: many WebSockets send INVITEs with one Call-ID at
// once; each gets a defined answer and nothing crashes (run with -race).
func TestSameCallIDManyFlows(t *testing.T) {
	noLeaks(t)
	core := newRawCore(t)
	g := newGatewayTo(t, core, func(c *configs.Config) {
		c.Upstream.InviteTimeout = 300 * time.Millisecond
		c.Limits.CallsPerIdentity = 100 // every flow is alice
	})
	const n = 20
	flows := make([]*fakeFlow, n)
	var wg sync.WaitGroup
	for i := range flows {
		flows[i] = newFakeFlow(fmt.Sprintf("dup%d", i))
		registerBrowser(t, g, core, flows[i])
	}
	for i := range flows {
		wg.Add(1)
		go func(f *fakeFlow, i int) {
			defer wg.Done()
			g.handleWeb(f, webInvite("same-call-id", fmt.Sprintf("b%d", i%3), ""))
			g.handleWeb(f, webInvite("same-call-id", fmt.Sprintf("c%d", i%3), ""))
		}(flows[i], i)
	}
	wg.Wait()
	for _, f := range flows {
		got := map[int]int{}
		for len(got) == 0 || got[408]+got[482] < 2 {
			res := f.expectStatus(t)
			got[res.StatusCode]++
			if res.StatusCode != 408 && res.StatusCode != 482 {
				t.Fatalf("%s got %d", f.name, res.StatusCode)
			}
		}
	}
	waitEnded(t, g, 5*time.Second)
}

// registerBrowser registers a browser as alice through the gateway at the
// raw core and returns the gateway's binding.
func registerBrowser(t testing.TB, g *Gateway, core *rawCore, f *fakeFlow) *binding {
	t.Helper()
	return registerAs(t, g, core, f, "alice")
}

// registerAs is registerBrowser for sip:user@imsgate.test, the flow's
// own device (deviceRegister).
func registerAs(t testing.TB, g *Gateway, core *rawCore, f *fakeFlow, user string) *binding {
	t.Helper()
	g.handleWeb(f, parseReq(t, deviceRegister(user, f.name)))
	reg := core.expect(sip.REGISTER)
	core.send(reply(reg, 200, "OK", "r1", "Contact: "+reg.Contact().Value()+";expires=600\r\n", ""))
	if res := f.next(t); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	b, ok := g.reg.lookup(reg.Contact().Address.User)
	if !ok {
		t.Fatal("no binding after 200")
	}
	return b
}

// deviceRegister is JsSIP's REGISTER for sip:user@imsgate.test from one
// device: its Contact URI and +sip.instance are the device's own, as each
// browser's are. A device that registers again over a new connection is
// the same device.
func deviceRegister(user, device string) string {
	return strings.NewReplacer("sip:alice@", "sip:"+user+"@", "sip:q8k2m4@", "sip:q8k2m4-"+device+"@",
		"urn:uuid:5c6f", "urn:uuid:5c6f-"+device).Replace(jssipRegister)
}

// callFromCore registers a fake browser, sends the core's INVITE to it
// (with extra header lines) and has the browser answer 200.
func callFromCore(t *testing.T, g *Gateway, core *rawCore, callID, extra string) *fakeFlow {
	t.Helper()
	f := newFakeFlow("f1")
	attach(g, f)
	b := registerBrowser(t, g, core, f)
	core.sendTo(coreInviteTo(core, b, callID, extra), g.core.udpLocal.String())
	webInv, ok := f.nextMsg(t).(*sip.Request)
	if !ok || webInv.Method != sip.INVITE {
		t.Fatalf("browser got %s, want the INVITE", startLine(webInv))
	}
	f.answer(t, g, webInv)
	return f
}

// coreInviteTo is the core's INVITE toward a binding's Contact.
func coreInviteTo(core *rawCore, b *binding, callID, extra string) string {
	return "INVITE sip:" + b.token + "@imsgate.test SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + core.addr() + ";rport;branch=z9hG4bK" + callID + "\r\n" + extra +
		"Max-Forwards: 70\r\nFrom: <sip:carol@imsgate.test>;tag=cf1\r\nTo: <sip:alice@imsgate.test>\r\n" +
		"Contact: <sip:carol@" + core.addr() + ">\r\nCall-ID: " + callID + "\r\nCSeq: 10 INVITE\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + itoa(len(coreOfferSDP)) + "\r\n\r\n" + coreOfferSDP
}

// ackFor is the core's ACK of the gateway's 2xx.
func ackFor(ok *sip.Response, coreAddr string) string {
	seq, _ := cseqOf(ok)
	target := ok.Contact().Address
	return fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKack%d\r\nMax-Forwards: 70\r\n"+
		"From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d ACK\r\nContent-Length: 0\r\n\r\n",
		target.String(), coreAddr, seq, ok.From().Value(), ok.To().Value(), ok.CallID().Value(), seq)
}

// answer makes the fake browser answer the gateway's INVITE with 200 and
// a WebRTC answer.
func (f *fakeFlow) answer(t *testing.T, g *Gateway, inv *sip.Request) {
	t.Helper()
	res := sip.NewResponseFromRequest(inv, 200, "OK", nil)
	res.To().Params.Add("tag", "web1")
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "a1", Host: "x.invalid"}, Params: sip.NewParams()})
	setSDP(res, []byte(browserAnswer(t, inv.Body())))
	g.handleWeb(f, res)
}

func waitCalls(t *testing.T, g *Gateway, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.Calls() != n {
		if time.Now().After(deadline) {
			t.Fatalf("calls = %d, want %d", g.Calls(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEnded waits until no call goroutine is left (Calls counts published
// calls; a call that ended lingers until its INVITE is settled).
func waitEnded(t *testing.T, g *Gateway, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for g.running() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still running after %v", g.running(), d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// browserAnswer is what a browser answers to the gateway's WebRTC offer:
// its first codec, its mid, DTLS active.
func browserAnswer(t *testing.T, offer []byte) string {
	t.Helper()
	var pt, rtpmap, mid string
	for _, line := range strings.Split(string(offer), "\r\n") {
		switch {
		case strings.HasPrefix(line, "m=audio "):
			if f := strings.Fields(line); len(f) > 3 {
				pt = f[3]
			}
		case strings.HasPrefix(line, "a=rtpmap:"+pt+" ") && pt != "" && rtpmap == "":
			rtpmap = line
		case strings.HasPrefix(line, "a=mid:") && mid == "":
			mid = strings.TrimPrefix(line, "a=mid:")
		}
	}
	if pt == "" || rtpmap == "" {
		t.Fatalf("no codec in the gateway's offer:\n%s", offer)
	}
	return "v=0\r\no=- 4 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE " + mid + "\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF " + pt + "\r\nc=IN IP4 0.0.0.0\r\n" + rtpmap + "\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
		"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
		"a=setup:active\r\na=mid:" + mid + "\r\na=sendrecv\r\na=rtcp-mux\r\n"
}

// TestCloseDuringUnregister: the gateway stops while a flow's
// de-registration waits for the core; nothing may crash.
func TestCloseDuringUnregister(t *testing.T) {
	g, core, f := newRawRig(t)
	attach(g, f)
	registerBrowser(t, g, core, f)
	g.flowClosed(f.name)
	core.expect(sip.REGISTER) // the core never answers it
	g.Close()
}

// TestMalformedCoreResponses: 2xx responses to our INVITE lacking the
// headers a dialog needs are dropped, never read; the call gets a defined
// end (the INVITE transaction times out: 408 to the browser).
func TestMalformedCoreResponses(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-malformed", "inv6", ""))
	inv := core.expect(sip.INVITE)
	for _, drop := range []string{"To", "From", "Call-ID"} {
		raw := reply(inv, 200, "OK", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", coreAnswerSDP)
		var kept []string
		for _, line := range strings.Split(raw, "\r\n") {
			if !strings.HasPrefix(line, drop+":") {
				kept = append(kept, line)
			}
		}
		core.send(strings.Join(kept, "\r\n"))
	}
	if res := f.expectStatus(t); res.StatusCode != 408 {
		t.Fatalf("browser got %d, want 408: %s", res.StatusCode, res)
	}
	waitEnded(t, g, 5*time.Second)
}

// TestLarge200ToCore: a core INVITE that crossed many proxies (long Via and
// Record-Route) makes our 200 larger than a UDP request may be; it still
// leaves (RFC 3261 18.2.2) and the call completes.
func TestLarge200ToCore(t *testing.T) {
	g, core, _ := newRawRig(t)
	var hops strings.Builder
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&hops, "Record-Route: <sip:pcscf%d.ims.mnc001.mcc001.3gppnetwork.org:5060;lr;ftag=%s>\r\n", i, strings.Repeat("f", 40))
	}
	callFromCore(t, g, core, "core-big", hops.String())
	for {
		m, ok := core.next(5 * time.Second)
		if !ok {
			t.Fatal("no 200 reached the core")
		}
		if res, isRes := m.msg.(*sip.Response); isRes && res.StatusCode == 200 {
			if m.size <= 1300 {
				t.Fatalf("the 200 is %d bytes; the test wants one over 1300", m.size)
			}
			t.Logf("a %d-byte 200 reached the core over %s", m.size, m.transport)
			core.send(ackFor(res, core.addr()))
			break
		}
	}
	waitCalls(t, g, 1)
}
