//go:build interop

package interop

import (
	"testing"
	"time"
)

// sessionRefreshDue is when the gateway, refresher of a 90 s session
// timer, must refresh: at half the interval (RFC 4028 §10).
const sessionRefreshDue = 45 * time.Second

// TestSessionTimerFromCore: SIPp calls carol with Session-Expires:
// 90;refresher=uas. The gateway keeps 90 s as the refresher (SIPp's
// scenario checks its 200) and refreshes the core leg at 45 s — by UPDATE
// when SIPp's Allow lists UPDATE, else by re-INVITE — while the browser
// hears nothing of it. A Session-Expires below 90 gets 422 with Min-SE.
func TestSessionTimerFromCore(t *testing.T) {
	cases := []struct {
		name, scenario, method string
	}{
		{"update", "uac_timer.xml", "UPDATE"},
		{"reinvite", "uac_timer_reinvite.xml", "INVITE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw, uac, in, wire := uacToCarol(t, tc.scenario, 1500)
			uacHungUp(t, gw, uac, in, wire, sessionRefreshDue+30*time.Second)

			sipp := wire.sipPackets(t, uacPort)
			answered := sipp.to(uacPort).responses(200, "INVITE").at(t, 1)
			refreshes := sipp.to(uacPort).requests(tc.method).firstPerCSeq()
			if tc.method == "INVITE" {
				refreshes = refreshes.keep(func(p sipPacket) bool { return p.toTag != "" })
			}
			if len(refreshes) != 1 {
				failGateway(t, gw, "SIPp got %d %s refreshes, want 1\n%s", len(refreshes), tc.method, sipp)
			}
			after := refreshes[0].at.Sub(answered)
			bye := sipp.from(uacPort).requests("BYE").first()
			heard := between(wire.times(t, rtpTo(uacMediaPort)), refreshes[0].at, bye)
			t.Logf("%s refresh %s after the 200; %d RTP packets reached SIPp after it", tc.method, after.Round(time.Millisecond), heard)
			logMedia(t, in)
			requireNoInDialog(t, gw, in, "the session timer runs on the core leg only")
			if after < sessionRefreshDue-5*time.Second || after > sessionRefreshDue+5*time.Second {
				t.Errorf("refresh came %s after the 200, want about %s (half of 90 s)", after, sessionRefreshDue)
			}
			if heard < minPhase {
				failGateway(t, gw, "only %d RTP packets reached SIPp after the refresh", heard)
			}
		})
	}
	t.Run("interval too small", func(t *testing.T) {
		_, gw, ua := carolBehindGateway(t)
		uac := startSIPpUAC(t, "uac_timer_422.xml", "carol", 0)
		select {
		case c := <-ua.Incoming():
			failGateway(t, gw, "the gateway called the browser (%s) instead of refusing Session-Expires: 60 with 422", c.Request().StartLine())
		case <-uac.done:
		case <-time.After(callStep):
		}
		requireSIPpDone(t, gw, uac, time.Second)
	})
}
