//go:build interop

package interop

import (
	"testing"
	"time"
)

// Hold and resume from real browsers: Chromium running JsSIP or SIP.js
// calls the SIPp UAS of uas_hold*.xml through the gateway and Kamailio,
// holds, resumes and hangs up. SIPp's scenario checks the directions
// (a=sendonly answered recvonly, then a=sendrecv); getStats() shows the
// browser's inbound RTP stop while it holds (it said sendonly) and grow
// again after the resume.

type holdCase struct {
	name, method, scenario string
}

func TestHold_jssip(t *testing.T) {
	testBrowserHold(t, "jssip", "jssip.html", []holdCase{
		{"reinvite", "reinvite", "uas_hold.xml"},
		{"update", "update", "uas_hold_update.xml"},
		{"update to a core without UPDATE", "update", "uas_hold.xml"},
	})
}

func TestHold_sipjs(t *testing.T) {
	testBrowserHold(t, "sipjs", "sipjs.html", []holdCase{{"reinvite", "reinvite", "uas_hold.xml"}})
}

func testBrowserHold(t *testing.T, lib, page string, cases []holdCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kam := startKamailio(t)
			uas := startSIPpUAS(t, "sipp-uas", tc.scenario, echoUASPort, echoMediaPort, true, "-m", "1")
			e := &env{kamailio: kam, capture: startCapture(t)}
			e.gateway = startGateway(t, gatewayConfig("udp"), repoRoot())
			e.pageBase = startStaticServer(t)
			opts := e.browserOptions(lib, page, "call-out-hold", "alice", "sip:echo@imsgate.test")
			opts.HoldMethod = tc.method
			r := startBrowser(t, opts).waitResult(t, browserBudget)
			e.requireOK(t, r, "confirmed", "held", "resumed", "ended")
			requireSIPpDone(t, e.gateway, uas, 10*time.Second)

			p := r.Phases
			t.Logf("getStats packets in/out: before hold %d/%d, held %d/%d, end of hold %d/%d, resumed %d/%d, after %d/%d",
				p["before"].Inbound, p["before"].Outbound, p["held"].Inbound, p["held"].Outbound,
				p["holdEnd"].Inbound, p["holdEnd"].Outbound, p["resumed"].Inbound, p["resumed"].Outbound,
				p["after"].Inbound, p["after"].Outbound)
			if in := p["holdEnd"].Inbound - p["held"].Inbound; in > inFlight {
				e.failf(t, r, "the held browser (sendonly) kept receiving RTP: %d packets", in)
			}
			if in := p["after"].Inbound - p["resumed"].Inbound; in < minPhase {
				e.failf(t, r, "after the resume the browser received %d packets, want %d", in, minPhase)
			}
			if p["after"].Outbound <= p["resumed"].Outbound {
				e.failf(t, r, "the browser sent nothing after the resume")
			}
			e.requireSIPpRTP(t, r, echoMediaPort)
		})
	}
}
