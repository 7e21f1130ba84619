//go:build interop

package interop

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Blind transfer (RFC 3515) with JsSIP in Chromium: the page calls
// SIPp's uas_transfer.xml straight behind the gateway (no Kamailio, so no
// registration), which plays the transferee or the transferor by the
// called user, as for the Go webua in transfer_test.go.

// TestBlindTransferByBrowser_jssip: JsSIP's session.refer() sends REFER
// to SIPp (the transferee); SIPp's 202 and NOTIFYs (sipfrag 100, then 200)
// come back as the ReferSubscriber's requestSucceeded, trying and
// accepted; then the page hangs up.
func TestBlindTransferByBrowser_jssip(t *testing.T) {
	e, uas := startDirectBrowserPeers(t, "uas_transfer.xml", 1)
	opts := e.directOptions("call-out-refer", "sip:transferee@imsgate.test")
	opts.ReferTo = "sip:carol@imsgate.test"
	r := startBrowser(t, opts).waitResult(t, browserBudget)
	e.requireOK(t, r, "confirmed", "refer_requestSucceeded", "refer_trying", "refer_accepted", "ended")
	requireSIPpDone(t, e.gateway, uas, 10*time.Second)
	requireReferToCarol(t, e.gateway)

	t.Logf("page events: REFER answered %q; NOTIFYs: trying %q, accepted %q",
		r.details("refer_requestSucceeded"), r.details("refer_trying"), r.details("refer_accepted"))
	if got := r.details("refer_requestSucceeded"); got[0] != "202" {
		e.failf(t, r, "REFER answered %s, want 202", got[0])
	}
	if n := countSIP(r.SIP, "< NOTIFY"); n != 2 {
		e.failf(t, r, "the browser got %d NOTIFYs, want 2 (sipfrag 100, 200)", n)
	}
	if n := countSIP(r.SIP, "> SIP/2.0 200 OK (NOTIFY)"); n != 2 {
		e.failf(t, r, "the browser answered %d NOTIFYs with 200, want 2", n)
	}
	e.requireBrowserAudio(t, r)
	e.requireSIPpRTP(t, r, echoMediaPort)
}

// TestBlindTransferByFarEnd_jssip: SIPp (the transferor) REFERs JsSIP to
// sip:echo; the page's 'refer' handler accepts, JsSIP calls the echo
// through the gateway and NOTIFYs SIPp (sipfrag 100, then 200, which
// SIPp's scenario checks); SIPp hangs up the first call, audio flows on
// the second, and the page hangs it up.
func TestBlindTransferByFarEnd_jssip(t *testing.T) {
	e, uas := startDirectBrowserPeers(t, "uas_transfer.xml", 2)
	r := startBrowser(t, e.directOptions("call-out-referred", "sip:transferor@imsgate.test")).waitResult(t, browserBudget)
	e.requireOK(t, r, "confirmed", "refer", "ended")
	requireSIPpDone(t, e.gateway, uas, 10*time.Second)

	t.Logf("page events: REFER to %q; confirmed %d, ended %q; getStats packets in/out on the new call %d/%d",
		r.details("refer"), len(r.details("confirmed")), r.details("ended"),
		r.Phases["transferred"].Inbound, r.Phases["transferred"].Outbound)
	if got := r.details("refer"); !strings.HasPrefix(got[0], "sip:echo@imsgate.test") {
		e.failf(t, r, "REFER reached the browser with Refer-To %q, want sip:echo@imsgate.test", got[0])
	}
	if got := r.details("ended"); len(got) != 2 || countSIP(r.SIP, "< BYE") != 1 {
		e.failf(t, r, "want the first call ended by SIPp's BYE, then the second: ended %q", got)
	}
	if n := countSIP(r.SIP, "> NOTIFY"); n != 2 {
		e.failf(t, r, "the browser sent %d NOTIFYs, want 2 (sipfrag 100, 200)", n)
	}
	if r.Phases["transferred"].Outbound == 0 {
		e.failf(t, r, "the browser sent no RTP on the new call")
	}
	notifies := readSIPpTrace(t, "sipp-uas-messages.log").filter(sippReceived, "NOTIFY ", "NOTIFY")
	for _, n := range notifies {
		t.Logf("SIPp got NOTIFY: Event %s, sipfrag %q", n.header("Event"), strings.TrimSpace(n.text[strings.LastIndex(n.text, "SIP/2.0"):]))
	}
	e.requireBrowserAudio(t, r)
	e.requireSIPpRTP(t, r, echoMediaPort)
	// SIPp answers each NOTIFY 200 (its scenario), the last one just
	// before its BYE: that 200 must reach the browser all the same.
	if n := countSIP(r.SIP, "< SIP/2.0 200 OK (NOTIFY)"); n != 2 {
		e.failf(t, r, "SIPp answered both NOTIFYs 200, the browser got %d of those 200s", n)
	}
}

// startDirectBrowserPeers: SIPp's UAS running scenario for calls calls
// and the gateway straight in front of it, media captured at SIPp, the
// test pages served.
func startDirectBrowserPeers(t *testing.T, scenario string, calls int) (*env, *proc) {
	t.Helper()
	uas := startSIPpUAS(t, "sipp-uas", scenario, directSIPpPort, echoMediaPort, true, "-m", strconv.Itoa(calls))
	e := &env{capture: startCapture(t)}
	e.gateway = startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
	e.pageBase = startStaticServer(t)
	return e, uas
}

// directOptions: JsSIP as alice calling target once registered (at the
// registrar front: the gateway relays no call before).
func (e *env) directOptions(scenario, target string) browserOptions {
	return e.browserOptions("jssip", "jssip.html", scenario, "alice", target)
}
