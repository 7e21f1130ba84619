package b2bua

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Mid-call session changes across the legs, with the raw core on one side
// and the fake browser on the other (call_change.go).

// answeredCall is callToCore with the browser's ACK of its 200.
func answeredCall(t *testing.T, g *Gateway, core *rawCore, f *fakeFlow) (*sip.Request, *sip.Request) {
	t.Helper()
	inv, ack := callToCore(t, g, core, f)
	g.handleWeb(f, webRequest(t, f, "ACK", 1, ""))
	return inv, ack
}

// coreSDP is a core description at o= version v, port and direction.
func coreSDP(v, port int, dir string) string {
	return fmt.Sprintf("v=0\r\no=core 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n", v, port, dir)
}

// browserSDP is the Chrome description at o= version v with a direction
// and ICE ufrag.
func browserSDP(v int, dir, ufrag string) string {
	s := strings.Replace(chromeOfferForTest, "4611731400430051336 2 IN", fmt.Sprintf("4611731400430051336 %d IN", v), 1)
	s = strings.Replace(s, "a=sendrecv", "a="+dir, 1)
	return strings.Replace(s, "a=ice-ufrag:wJ8r", "a=ice-ufrag:"+ufrag, 1)
}

// webRequest is an in-dialog request of the browser in callToCore's call.
func webRequest(t *testing.T, f *fakeFlow, method string, cseq int, sdp string) *sip.Request {
	t.Helper()
	raw := fmt.Sprintf("%s sip:x@imsgate.invalid SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK%s%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=f1\r\nTo: <sip:bob@imsgate.test>;tag=%s\r\n"+
		"Call-ID: web-call-1\r\nCSeq: %d %s\r\nContact: <sip:a1@x.invalid;transport=ws>\r\n",
		method, strings.ToLower(method), cseq, webTagOf(t, f), cseq, method)
	if sdp != "" {
		raw += "Content-Type: application/sdp\r\n"
	}
	raw += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// webReply is the browser's response to a request the gateway sent it.
func webReply(req *sip.Request, code int, sdp string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, "", nil)
	if res.To() != nil && tagOf(res.To().Params) == "" {
		res.To().Params.Add("tag", "f1")
	}
	if sdp != "" {
		setSDP(res, []byte(sdp))
	}
	return res
}

// nextRequest skips what the browser gets that is not a request.
func (f *fakeFlow) nextRequest(t *testing.T) *sip.Request {
	t.Helper()
	for {
		if req, ok := f.nextMsg(t).(*sip.Request); ok {
			return req
		}
	}
}

func hasLine(body []byte, line string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `\r?$`).Match(body)
}

func originVersion(t *testing.T, body []byte) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^o=\S+ \d+ (\d+) `).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no o= line in\n%s", body)
	}
	return string(m[1])
}

// TestHoldFromCore: the core's a=sendonly reaches the browser as an offer;
// the browser's a=recvonly answer reaches the core; the resume likewise.
// Our o= on each leg moves by one per change.
func TestHoldFromCore(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	for i, dir := range []struct{ offer, answer string }{{"sendonly", "recvonly"}, {"sendrecv", "sendrecv"}} {
		cseq := 10 + i
		core.send(coreInDialog("INVITE", inv, ack, core.addr(), cseq, coreSDP(2+i, 30000, dir.offer)))
		toWeb := f.nextRequest(t)
		if toWeb.Method != sip.INVITE || !hasLine(toWeb.Body(), "a="+dir.offer) {
			t.Fatalf("the browser got %s with\n%s\nwant INVITE a=%s", toWeb.Method, toWeb.Body(), dir.offer)
		}
		g.handleWeb(f, webReply(toWeb, 200, browserSDP(3+i, dir.answer, "wJ8r")))
		if ackWeb := f.nextRequest(t); ackWeb.Method != sip.ACK {
			t.Fatalf("the browser got %s, want the ACK of its 200", ackWeb.Method)
		}
		res := core.expectResponse()
		if res.StatusCode != 200 || !hasLine(res.Body(), "a="+dir.answer) {
			t.Fatalf("core got %d with\n%s\nwant 200 a=%s", res.StatusCode, res.Body(), dir.answer)
		}
		if v, first := originVersion(t, res.Body()), originVersion(t, inv.Body()); v == first {
			t.Fatalf("o= version %s not incremented after a change", v)
		}
		core.send(ackFor(res, core.addr()))
	}
	core.quiet(2 * sip.T2)
	if g.Calls() != 1 {
		t.Fatal("the call must go on")
	}
}

// TestCoreMediaMovesAlone: a re-INVITE that only moves the core's media is
// answered by the gateway; the browser hears nothing of it.
func TestCoreMediaMovesAlone(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	core.send(coreInDialog("INVITE", inv, ack, core.addr(), 10, coreSDP(2, 30010, "sendrecv")))
	res := core.expectResponse()
	if res.StatusCode != 200 || !hasLine(res.Body(), "a=sendrecv") {
		t.Fatalf("core got %d with\n%s", res.StatusCode, res.Body())
	}
	if v, first := originVersion(t, res.Body()), originVersion(t, inv.Body()); v == first {
		t.Fatalf("o= version %s: our answer differs from our offer, so it must be a new version", v)
	}
	core.send(ackFor(res, core.addr()))
	select {
	case m := <-f.got:
		t.Fatalf("the browser heard of the core's move: %s", startLine(m))
	case <-time.After(100 * time.Millisecond):
	}
	// The same description again is a refresh: same version.
	core.send(coreInDialog("UPDATE", inv, ack, core.addr(), 11, coreSDP(2, 30010, "sendrecv")))
	again := core.expectResponse()
	if originVersion(t, again.Body()) != originVersion(t, res.Body()) {
		t.Fatalf("a refresh moved our o= version:\n%s", again.Body())
	}
}

// TestOfferlessReinviteFromCore: our offer goes in the 200; the core's
// answer in the ACK puts the browser on hold with an offer of ours.
func TestOfferlessReinviteFromCore(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	core.send(coreInDialog("INVITE", inv, ack, core.addr(), 10, ""))
	res := core.expectResponse()
	if res.StatusCode != 200 || !hasLine(res.Body(), "a=sendrecv") || !hasLine(res.Body(), "a=rtpmap:0 PCMU/8000") {
		t.Fatalf("core got %d with\n%s\nwant 200 with our offer", res.StatusCode, res.Body())
	}
	answered := strings.Replace(ackFor(res, core.addr()), "Content-Length: 0\r\n\r\n",
		"Content-Type: application/sdp\r\nContent-Length: "+itoa(len(coreSDP(2, 30000, "sendonly")))+"\r\n\r\n"+coreSDP(2, 30000, "sendonly"), 1)
	core.send(answered)
	toWeb := f.nextRequest(t)
	if toWeb.Method != sip.INVITE || !hasLine(toWeb.Body(), "a=sendonly") {
		t.Fatalf("the browser got %s with\n%s\nwant our INVITE a=sendonly", toWeb.Method, toWeb.Body())
	}
	g.handleWeb(f, webReply(toWeb, 200, browserSDP(3, "recvonly", "wJ8r")))
	if a := f.nextRequest(t); a.Method != sip.ACK {
		t.Fatalf("the browser got %s, want ACK", a.Method)
	}
	core.quiet(2 * sip.T2)
}

// TestHoldFromBrowser: the browser holds by re-INVITE and by UPDATE; the
// core gets a re-INVITE (its Allow lacks UPDATE) and its answer reaches the
// browser. An ICE restart stays on the web leg.
func TestHoldFromBrowser(t *testing.T) {
	g, core, f := newWebRig(t)
	answeredCall(t, g, core, f)
	steps := []struct {
		method, dir, ufrag string
		toCore             bool
	}{
		{"INVITE", "sendonly", "wJ8r", true},
		{"UPDATE", "sendrecv", "wJ8r", true},
		{"INVITE", "sendrecv", "newU", false}, // ICE restart alone
	}
	for i, st := range steps {
		cseq := 10 + i
		g.handleWeb(f, webRequest(t, f, st.method, cseq, browserSDP(3+i, st.dir, st.ufrag)))
		if st.toCore {
			out := core.expect(sip.INVITE)
			if !hasLine(out.Body(), "a="+st.dir) {
				t.Fatalf("core got\n%s\nwant a=%s", out.Body(), st.dir)
			}
			answer := map[string]string{"sendonly": "recvonly", "sendrecv": "sendrecv"}[st.dir]
			core.send(reply(out, 200, "OK", "", "Contact: <sip:bob@"+core.addr()+">\r\n", coreSDP(2+i, 30000, answer)))
			core.expect(sip.ACK)
		}
		res := f.expectStatus(t)
		if res.StatusCode != 200 || len(res.Body()) == 0 {
			t.Fatalf("browser got %d with\n%s", res.StatusCode, res.Body())
		}
		if !st.toCore && hasLine(res.Body(), "a=ice-ufrag:"+originalUfrag(t, f)) {
			t.Fatalf("an ICE restart must get new credentials of ours:\n%s", res.Body())
		}
		if st.method == "INVITE" {
			g.handleWeb(f, webRequest(t, f, "ACK", cseq, ""))
		}
	}
	core.quiet(100 * time.Millisecond)
}

// originalUfrag is our ufrag in the first answer the browser got.
func originalUfrag(t *testing.T, f *fakeFlow) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.out {
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
			if u := regexp.MustCompile(`a=ice-ufrag:(\S+)`).FindSubmatch(res.Body()); u != nil {
				return string(u[1])
			}
		}
	}
	t.Fatal("no answer with an ice-ufrag reached the browser")
	return ""
}

// TestGlare: the core's re-INVITE crosses ours: it gets 491, our 491 from
// the core makes us send ours again after the back-off, and the browser
// gets its answer.
func TestGlare(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	g.handleWeb(f, webRequest(t, f, "INVITE", 10, browserSDP(3, "sendonly", "wJ8r")))
	ours := core.expect(sip.INVITE)
	core.send(coreInDialog("INVITE", inv, ack, core.addr(), 10, coreSDP(2, 30000, "inactive")))
	if res := core.expectResponse(); res.StatusCode != 491 {
		t.Fatalf("the crossing re-INVITE got %d, want 491", res.StatusCode)
	}
	core.send(strings.Replace(coreInDialog("ACK", inv, ack, core.addr(), 10, ""), "ack10", "invite10", 1))
	core.send(reply(ours, 491, "Request Pending", "", "", ""))
	core.expect(sip.ACK) // of the 491, in its transaction
	again := core.expect(sip.INVITE)
	if cseqNo(again) <= cseqNo(ours) || !hasLine(again.Body(), "a=sendonly") {
		t.Fatalf("retry CSeq %d after %d with\n%s", cseqNo(again), cseqNo(ours), again.Body())
	}
	core.send(reply(again, 200, "OK", "", "Contact: <sip:bob@"+core.addr()+">\r\n", coreSDP(2, 30000, "recvonly")))
	core.expect(sip.ACK)
	if res := f.expectStatus(t); res.StatusCode != 200 || !hasLine(res.Body(), "a=recvonly") {
		t.Fatalf("browser got %d with\n%s", res.StatusCode, res.Body())
	}
}

// TestChangeChurnHoldsNoMemory: a call taken through 1,000 session changes
// (hold and resume by the core, carried to the browser and back, and
// re-offers answered alone) holds no more memory than after the first.
func TestChangeChurnHoldsNoMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 changes")
	}
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	dirs := []struct{ offer, answer string }{{"sendonly", "recvonly"}, {"sendrecv", "sendrecv"}}
	// Per four changes: hold and resume, carried to the browser; a move by
	// re-INVITE and one by UPDATE, answered alone.
	change := func(i int) {
		cseq := 10 + i
		switch i % 4 {
		case 2, 3:
			method := [...]string{2: "INVITE", 3: "UPDATE"}[i%4]
			core.send(coreInDialog(method, inv, ack, core.addr(), cseq, coreSDP(2+i, 30000+2*(i%8), "sendrecv")))
			res := core.expectFinal(uint32(cseq), sip.RequestMethod(method))
			if res.StatusCode != 200 {
				t.Fatalf("change %d: %d", i, res.StatusCode)
			}
			if method == "INVITE" {
				core.send(ackFor(res, core.addr()))
			}
			return
		}
		d := dirs[i%4]
		core.send(coreInDialog("INVITE", inv, ack, core.addr(), cseq, coreSDP(2+i, 30000, d.offer)))
		toWeb := f.nextRequest(t)
		g.handleWeb(f, webReply(toWeb, 200, browserSDP(3+i, d.answer, "wJ8r")))
		f.nextRequest(t) // our ACK
		res := core.expectFinal(uint32(cseq), sip.INVITE)
		if res.StatusCode != 200 {
			t.Fatalf("change %d: %d", i, res.StatusCode)
		}
		core.send(ackFor(res, core.addr()))
	}
	heap := func() uint64 {
		// Finished transactions live on for their timers (64·T1, RFC 3261
		// 17.2.1 Timer H and J); let them go first.
		time.Sleep(70 * sip.T1)
		for len(core.msgs) > 0 { // the test's own record of the core's mail
			<-core.msgs
		}
		f.drain()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// The first hundred grow what is sized by the peak rate, not by the
	// count (sipgo's transaction tables keep their buckets).
	for i := range 100 {
		change(i)
	}
	f.drain()
	before := heap()
	for i := 100; i < 1000; i++ {
		change(i)
		if i%100 == 0 {
			f.drain()
		}
	}
	f.drain()
	after := heap()
	t.Logf("heap after 100 changes %d B, after 1,000 %d B", before, after)
	if after > before+256<<10 { // a leak of one request per change would be ~1 MB
		t.Errorf("heap grew by %d B over 900 changes", after-before)
	}
	if g.Calls() != 1 {
		t.Fatal("the call must go on")
	}
}

// drain forgets what the browser got after its first 200, so a long test
// measures the gateway and not its own record.
func (f *fakeFlow) drain() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.out {
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
			f.out = append([]sip.Message(nil), f.out[:i+1]...)
			return
		}
	}
}

// TestOptionsInDialogAnsweredHere: OPTIONS in a dialog is answered on its
// own leg with what we accept; the other leg never sees it.
func TestOptionsInDialogAnsweredHere(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	core.send(coreInDialog("OPTIONS", inv, ack, core.addr(), 10, ""))
	res := core.expectResponse()
	for _, h := range []string{"Allow", "Accept", "Supported"} {
		if res.StatusCode != 200 || res.GetHeader(h) == nil {
			t.Fatalf("OPTIONS got %d without %s", res.StatusCode, h)
		}
	}
	if !strings.Contains(res.GetHeader("Allow").Value(), "UPDATE") {
		t.Errorf("Allow %q lacks UPDATE", res.GetHeader("Allow").Value())
	}
	g.handleWeb(f, webRequest(t, f, "OPTIONS", 10, ""))
	if res := f.expectStatus(t); res.StatusCode != 200 || res.GetHeader("Supported") == nil {
		t.Fatalf("browser OPTIONS got %d", res.StatusCode)
	}
	core.quiet(100 * time.Millisecond)
}

// TestInfoInEarlyDialogRelayed: an INFO from the browser after the core's
// 180 (with its tag) and before the 200 reaches the core in that early
// dialog.
func TestInfoInEarlyDialogRelayed(t *testing.T) {
	g, core, f := newWebRig(t)
	g.handleWeb(f, webInvite("web-call-1", "inv1", ""))
	inv := core.expect(sip.INVITE)
	core.send(reply(inv, 180, "Ringing", "t1", "Contact: <sip:bob@"+core.addr()+">\r\n", ""))
	ringing := f.expectStatus(t)
	if ringing.StatusCode != 180 {
		t.Fatalf("browser got %d", ringing.StatusCode)
	}
	raw := fmt.Sprintf("INFO sip:x@imsgate.invalid SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKinfo1\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=f1\r\nTo: <sip:bob@imsgate.test>;tag=%s\r\n"+
		"Call-ID: web-call-1\r\nCSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 22\r\n\r\nSignal=5\r\nDuration=160",
		tagOf(ringing.To().Params))
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	g.handleWeb(f, msg)
	info := core.expect(sip.INFO)
	if tagOf(info.To().Params) != "t1" {
		t.Fatalf("INFO To tag %q, want the early dialog's t1", tagOf(info.To().Params))
	}
	core.send(reply(info, 200, "OK", "", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 200 {
		t.Fatalf("browser's INFO got %d", res.StatusCode)
	}
}

// TestChangeWaitsForAck: the core's re-INVITE that must reach the browser
// while the browser has not yet acknowledged our 200 to its own re-INVITE
// waits for that ACK (RFC 3261 14.1: no new INVITE while one is in
// progress), then goes on; a second one meanwhile gets 491.
func TestChangeWaitsForAck(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := answeredCall(t, g, core, f)
	g.handleWeb(f, webRequest(t, f, "INVITE", 10, browserSDP(3, "sendonly", "wJ8r")))
	out := core.expect(sip.INVITE)
	core.send(reply(out, 200, "OK", "", "Contact: <sip:bob@"+core.addr()+">\r\n", coreSDP(2, 30000, "recvonly")))
	core.expect(sip.ACK)
	if res := f.expectStatus(t); res.StatusCode != 200 {
		t.Fatalf("browser got %d", res.StatusCode)
	}
	core.send(coreInDialog("INVITE", inv, ack, core.addr(), 10, coreSDP(3, 30000, "inactive")))
	core.quiet(100 * time.Millisecond) // it waits, unanswered
	core.send(coreInDialog("UPDATE", inv, ack, core.addr(), 11, coreSDP(4, 30000, "sendonly")))
	if res := core.expectResponse(); res.StatusCode != 491 || cseqMethod(res) != sip.UPDATE {
		t.Fatalf("got %d %s, want 491 for the second offer while the first waits", res.StatusCode, cseqMethod(res))
	}
	select {
	case m := <-f.got:
		t.Fatalf("the browser got %s before its ACK", startLine(m))
	default:
	}
	g.handleWeb(f, webRequest(t, f, "ACK", 10, ""))
	toWeb := f.nextRequest(t)
	if toWeb.Method != sip.INVITE || !hasLine(toWeb.Body(), "a=inactive") {
		t.Fatalf("browser got %s", toWeb.Method)
	}
	g.handleWeb(f, webReply(toWeb, 200, browserSDP(4, "inactive", "wJ8r")))
	if res := core.expectResponse(); res.StatusCode != 200 || !hasLine(res.Body(), "a=inactive") {
		t.Fatalf("core got %d with\n%s", res.StatusCode, res.Body())
	}
}

// TestOfferlessInviteFromCore: third-party call control (RFC 3725). The
// core's INVITE has no SDP: the browser gets our offer, its answer gives
// our offer in the 200 to the core, and the core's ACK carries the answer.
func TestOfferlessInviteFromCore(t *testing.T) {
	g, core, _ := newRawRig(t)
	f := newFakeFlow("f1")
	attach(g, f)
	b := registerBrowser(t, g, core, f)
	raw := strings.Replace(coreInviteTo(core, b, "3pcc1", ""), "Content-Type: application/sdp\r\nContent-Length: "+itoa(len(coreOfferSDP))+"\r\n\r\n"+coreOfferSDP, "Content-Length: 0\r\n\r\n", 1)
	core.sendTo(raw, g.core.udpLocal.String())
	webInv := f.nextRequest(t)
	if !hasLine(webInv.Body(), "a=setup:actpass") || !hasLine(webInv.Body(), "a=sendrecv") {
		t.Fatalf("the browser must get our offer:\n%s", webInv.Body())
	}
	f.answer(t, g, webInv)
	ok := core.expectResponse()
	if ok.StatusCode != 200 || !hasLine(ok.Body(), "a=sendrecv") || bytes.Contains(ok.Body(), []byte("fingerprint")) {
		t.Fatalf("core got %d with\n%s\nwant 200 with our RTP/AVP offer", ok.StatusCode, ok.Body())
	}
	ack := strings.Replace(ackFor(ok, core.addr()), "Content-Length: 0\r\n\r\n",
		"Content-Type: application/sdp\r\nContent-Length: "+itoa(len(coreAnswerSDP))+"\r\n\r\n"+coreAnswerSDP, 1)
	core.send(ack)
	core.quiet(3 * sip.T2) // the ACK stopped our 200's retransmissions
	select {
	case m := <-f.got:
		if r, isReq := m.(*sip.Request); isReq && r.Method == sip.INVITE {
			t.Fatalf("the browser got a second INVITE though nothing changed for it")
		}
	default:
	}
	if g.Calls() != 1 {
		t.Fatal("the call must be up")
	}
}
