//go:build interop

package interop

import (
	"strings"
	"testing"
)

// TestDigitsFromCoreReachBrowser: SIPp calls carol through Kamailio and
// presses 1 and 5 as RFC 4733 telephone-events (dtmf.to_web: info, the
// default). A browser cannot report received RFC 4733, so the gateway reads
// each event once and sends the browser an INFO (application/dtmf-relay):
// the webua must have got exactly "1" then "5".
func TestDigitsFromCoreReachBrowser(t *testing.T) {
	_, gw, ua := carolBehindGateway(t)
	in := takeCallFromSIPp(t, gw, ua, startCapture(t), "uac_dtmf.xml", 3000)
	var got []string
	for _, r := range in.InDialogSeen() {
		if r.Method != "INFO" {
			continue
		}
		for _, line := range strings.Split(r.Body, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Signal="); ok {
				got = append(got, v)
			}
		}
	}
	t.Logf("digits the browser got as INFO: %v", got)
	if strings.Join(got, ",") != "1,5" {
		failGateway(t, gw, "the browser got digits %v as INFO, want 1 then 5, once each", got)
	}
	if n := strings.Count(gw.log(), "\tdtmf\t"); n != 2 {
		failGateway(t, gw, "the gateway logged %d digits, want 2", n)
	}
}
