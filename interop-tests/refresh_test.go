//go:build interop

package interop

import (
	"strings"
	"testing"
)

// TestSessionRefreshFromCore: SIPp → Kamailio → gateway → browser; in the
// middle of the call SIPp refreshes the session as an IMS core keeps its
// session timer — a re-INVITE repeating its SDP (same o= version), then an
// UPDATE without a body. Both get 200 from the gateway on the core leg
// alone, SIPp's scenario checks the re-INVITE's 200 carries SDP, and media
// flows before and after.
func TestSessionRefreshFromCore(t *testing.T) {
	_, gw, ua := carolBehindGateway(t)
	in := takeCallFromSIPp(t, gw, ua, startCapture(t), "uac_refresh.xml", 3000)
	logMedia(t, in)

	log := gw.log()
	if n := strings.Count(log, "session refreshed"); n != 2 {
		failGateway(t, gw, "gateway logged %d session refreshes, want 2 (the re-INVITE and the UPDATE)", n)
	}
	if strings.Contains(log, "488 Not Acceptable Here") {
		failGateway(t, gw, "a refresh was refused")
	}
	if got := in.Media().Received; got < 2*minHeard {
		failGateway(t, gw, "the browser received %d packets over the call, want media after the refresh too", got)
	}
}
