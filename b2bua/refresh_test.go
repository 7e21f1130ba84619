package b2bua

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// coreInDialog is a request of the core in the dialog callToCore made:
// from the callee (tag t1) to our Contact, with our tag.
func coreInDialog(method string, inv *sip.Request, ack *sip.Request, coreAddr string, cseq int, sdp string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, inv.Contact().Address.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;rport;branch=z9hG4bK%s%d\r\nMax-Forwards: 70\r\n", coreAddr, strings.ToLower(method), cseq)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", ack.To().Value(), ack.From().Value())
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:bob@%s>\r\n", inv.CallID().Value(), cseq, method, coreAddr)
	if sdp != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	return b.String()
}

// TestSessionRefreshFromCore: a re-INVITE or UPDATE that changes nothing
// (what an IMS core sends to keep its session timer) is answered 200 on the
// core leg alone, with our last description unchanged (same o= version).
func TestSessionRefreshFromCore(t *testing.T) {
	g, core, f := newWebRig(t)
	inv, ack := callToCore(t, g, core, f)
	for i, tc := range []struct {
		method, sdp string
		code        int
		wantSDP     bool
	}{
		{"INVITE", coreAnswerSDP, 200, true},
		{"UPDATE", "", 200, false},
		{"UPDATE", coreAnswerSDP, 200, true},
	} {
		t.Run(fmt.Sprintf("%s with %d bytes of SDP", tc.method, len(tc.sdp)), func(t *testing.T) {
			cseq := 10 + i
			core.send(coreInDialog(tc.method, inv, ack, core.addr(), cseq, tc.sdp))
			res := core.expectResponse()
			if res.StatusCode != tc.code {
				t.Fatalf("got %d, want %d", res.StatusCode, tc.code)
			}
			if got := sdpBody(res); tc.wantSDP && string(got) != string(inv.Body()) {
				t.Fatalf("the refresh answer must repeat our last description:\n%s\nwant\n%s", got, inv.Body())
			}
			switch {
			case tc.method == "INVITE" && tc.code == 200:
				core.send(ackFor(res, core.addr()))
			case tc.method == "INVITE":
				// A non-2xx is acknowledged in its transaction (same branch).
				core.send(strings.Replace(coreInDialog("ACK", inv, ack, core.addr(), cseq, ""),
					fmt.Sprintf("ack%d", cseq), fmt.Sprintf("invite%d", cseq), 1))
			}
		})
	}
	select {
	case m := <-f.got:
		t.Fatalf("the browser heard of the core's refresh: %s", startLine(m))
	case <-time.After(100 * time.Millisecond):
	}
	core.quiet(2 * sip.T2) // our 200s were acknowledged: no retransmission
	if g.Calls() != 1 {
		t.Fatal("the call must go on")
	}
}

// TestSessionRefreshFromWeb: JsSIP keeps its session timer with an UPDATE
// without a body; it is answered 200 and the core never sees it.
func TestSessionRefreshFromWeb(t *testing.T) {
	g, core, f := newWebRig(t)
	callToCore(t, g, core, f)
	g.handleWeb(f, webInDialog(t, f, "UPDATE", "Session-Expires: 90;refresher=uac\r\n"))
	if res := f.next(t); res.StatusCode != 200 || res.Contact() == nil {
		t.Fatalf("got %d (Contact %v), want 200 with our Contact", res.StatusCode, res.Contact())
	}
	core.quiet(100 * time.Millisecond)
}
