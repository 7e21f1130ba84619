//go:build interop

package interop

import (
	"regexp"
	"strings"
	"testing"
)

// refusedCallID reads the Call-ID of the gateway's "request refused" log
// line (console format: the fields as JSON after the message).
var refusedCallID = regexp.MustCompile(`request refused\s+\{.*"sip_call_id": "([^"]+)"`)

// TestPassthrough: in passthrough mode (the default) JsSIP in headless
// Chromium calls before it has registered: the gateway answers 403 without
// relaying the INVITE or allocating a media session for it. The same page
// then registers through Kamailio (digest passes through) and its call to
// the echo goes through with audio both ways.
func TestPassthrough(t *testing.T) {
	e := newEnv(t, "udp")
	opts := e.browserOptions("jssip", "jssip.html", "call-unregistered", "alice", "sip:echo@imsgate.test")
	opts.NoRegister = true
	b := startBrowser(t, opts)
	r := b.waitResult(t, browserBudget)
	e.requireOK(t, r, "failed", "registered", "confirmed", "ended")

	i403, iReg, i200 := indexSIP(r.SIP, "< SIP/2.0 403"), indexSIP(r.SIP, "> REGISTER"), indexSIP(r.SIP, "< SIP/2.0 200 OK (INVITE)")
	if i403 < 0 || iReg < i403 || i200 < iReg {
		e.failf(t, r, "want the first INVITE refused 403 before any REGISTER, then the call answered 200")
	}
	if i407 := indexSIP(r.SIP, "< SIP/2.0 407"); i407 >= 0 && i407 < i403 {
		e.failf(t, r, "the unregistered INVITE reached Kamailio (it was challenged 407)")
	}
	if got := r.details("failed"); len(got) == 0 || got[0] != "Rejected" {
		e.failf(t, r, "JsSIP's first call failed with %q, want Rejected (403)", got)
	}

	log := e.gateway.log()
	m := refusedCallID.FindStringSubmatch(log)
	if m == nil {
		e.failf(t, r, "the gateway logged no refusal")
	}
	callID := m[1]
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, callID) {
			continue
		}
		// A call (and its media session) logs under web_sip_call_id.
		if strings.Contains(line, "media session") || strings.Contains(line, `"web_sip_call_id": "`+callID+`"`) {
			e.failf(t, r, "the refused INVITE %s got a call or a media session:\n%s", callID, line)
		}
	}
	if !strings.Contains(log, `"reason": "unregistered"`) {
		e.failf(t, r, "the refusal does not say why (reason unregistered)")
	}
	// The registered call's session is logged: the check above can see one.
	if !strings.Contains(log, "media session closed") {
		e.failf(t, r, "no media session logged at all (log level debug?)")
	}
	t.Logf("refused INVITE %s: 403 without a call or media session; then registered and called", callID)

	e.requireBrowserAudio(t, r)
	e.requireSIPpRTP(t, r, echoMediaPort)
}
