//go:build interop

package interop

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRegisterWildcard: a browser registered through the gateway at
// Kamailio removes all its bindings with `Contact: *` and `Expires: 0`
// (RFC 3261 10.2.2). Before it, SIPp's call reaches the browser with media;
// after it, Kamailio has no binding left and answers SIPp's call 404.
func TestRegisterWildcard(t *testing.T) {
	kam, gw, ua := carolBehindGateway(t)
	takeCallFromSIPp(t, gw, ua, startCapture(t), "uac_call.xml", 2000)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ua.UnregisterAll(ctx)
	if err != nil {
		failGateway(t, gw, "unregister all: %v", err)
	}
	if !res.IsSuccess() {
		failGateway(t, gw, "unregister all: %d %s", res.StatusCode, res.Reason)
	}
	if !strings.Contains(gw.log(), "unregistered all contacts") {
		failGateway(t, gw, "the gateway did not log the wildcard de-registration")
	}

	after := startSIPpUAC(t, "uac_expect_404.xml", "carol", 0)
	requireSIPpDone(t, gw, after, 15*time.Second)
	if !strings.Contains(kam.log(), "no binding for sip:carol@imsgate.test") {
		failGateway(t, gw, "Kamailio's 404 was not for a missing binding:\n%s", tail(kam.log(), 20))
	}
	t.Logf("Contact: * answered %d %s; Kamailio then answered SIPp's call to carol 404", res.StatusCode, res.Reason)
}
