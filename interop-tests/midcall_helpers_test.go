//go:build interop

package interop

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Mid-call session changes (re-INVITE, UPDATE, hold, glare, session
// timers) against SIPp, Kamailio and the Go webua: shared steps.

const (
	// uacWireFilter captures the SIPp caller's SIP and RTP at SIPp.
	uacWireFilter = "udp port 5081 or udp portrange 6000-6199"
	// uasWireFilter captures SIP at the gateway's core side and RTP at SIPp.
	uasWireFilter = wireFilter
	// uacMovedMediaPort is the SIPp caller's second media socket (its
	// video port, -mp + 2), which -rtp_echo also echoes from.
	uacMovedMediaPort = uacMediaPort + 2
	// inFlight is how many RTP packets may still arrive after a direction
	// change took effect: those already on their way.
	inFlight = 10
	// minPhase is how many RTP packets a phase of a call (before a hold,
	// after a resume) must carry: half a second of 20 ms packets.
	minPhase = 25
)

// answerNextOrSIPp is answerNext that also fails at once, with SIPp's log,
// when the SIPp caller ends before its call reaches the browser (one of
// its checks failed).
func answerNextOrSIPp(t *testing.T, gw *proc, ua *webua.UA, uac *proc) *webua.Call {
	t.Helper()
	select {
	case c, ok := <-ua.Incoming():
		if !ok {
			failGateway(t, gw, "websocket closed before a call came in")
		}
		ctx, cancel := context.WithTimeout(context.Background(), callStep)
		defer cancel()
		if err := c.Ring(ctx); err != nil {
			failGateway(t, gw, "ring: %v", err)
		}
		if err := c.Answer(ctx); err != nil {
			failGateway(t, gw, "answer: %v", err)
		}
		return c
	case <-uac.done:
		failGateway(t, gw, "SIPp ended (%v) before its call reached the browser\n--- sipp log (tail):\n%s", uac.waitErr, tail(uac.log(), 25))
	case <-time.After(callStep):
		failGateway(t, gw, "no call reached the browser within %s", callStep)
	}
	return nil
}

// awaitInDialog waits for the next in-dialog request the webua answered
// and checks its method.
func awaitInDialog(t *testing.T, gw *proc, call *webua.Call, method sip.RequestMethod, timeout time.Duration) webua.SessionRequest {
	t.Helper()
	select {
	case r := <-call.InDialog():
		if r.Method != string(method) {
			failGateway(t, gw, "browser got %s (offer %q, answered %d), want %s", r.Method, r.Offer, r.Status, method)
		}
		return r
	case <-call.Ended():
		failGateway(t, gw, "call ended (%s) before the browser got a %s", call.EndReason(), method)
	case <-time.After(timeout):
		failGateway(t, gw, "browser got no %s within %s", method, timeout)
	}
	return webua.SessionRequest{}
}

// requireNoInDialog: the browser never heard of what the core did.
func requireNoInDialog(t *testing.T, gw *proc, call *webua.Call, why string) {
	t.Helper()
	if seen := call.InDialogSeen(); len(seen) > 0 {
		failGateway(t, gw, "%s, yet the browser got in-dialog requests: %+v", why, seen)
	}
}

// reoffer sends the webua's re-INVITE or UPDATE and wants 2xx with SDP
// saying answer.
func reoffer(t *testing.T, gw *proc, call *webua.Call, method sip.RequestMethod, want, answer webua.Direction) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	res, err := call.Reoffer(ctx, method, want)
	if err != nil {
		failGateway(t, gw, "%s offering %s: %v", method, want, err)
	}
	got := webua.DirectionOf(string(res.Body()))
	if !res.IsSuccess() || len(res.Body()) == 0 || got != answer {
		failGateway(t, gw, "%s offering %s: %d %s with %q, want 200 with %s", method, want, res.StatusCode, res.Reason, got, answer)
	}
}

// times lists when the captured packets matching a display filter were
// seen; the capture must be stopped.
func (c *capture) times(t *testing.T, filter string) []time.Time {
	t.Helper()
	out, err := exec.Command("tshark", "-r", c.file, "-n", "-Y", filter, "-T", "fields", "-e", "frame.time_epoch").Output()
	if err != nil {
		t.Fatalf("tshark -r %s -Y %q: %v", c.file, filter, err)
	}
	var ts []time.Time
	for _, f := range strings.Fields(string(out)) {
		if epoch, err := strconv.ParseFloat(f, 64); err == nil {
			ts = append(ts, time.Unix(0, int64(epoch*1e9)))
		}
	}
	return ts
}

// between counts the times in [from, to).
func between(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, at := range ts {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// rtpTo and rtpFrom filter the UDP to and from a SIPp media port.
func rtpTo(port int) string   { return fmt.Sprintf("udp.dstport == %d", port) }
func rtpFrom(port int) string { return fmt.Sprintf("udp.srcport == %d", port) }

// at finds the one packet with CSeq number cseq: the time a transaction's
// request or response was first seen.
func (ps sipPackets) at(t *testing.T, cseq int) time.Time {
	t.Helper()
	for _, p := range ps {
		if p.cseq == cseq {
			return p.at
		}
	}
	t.Fatalf("no packet with CSeq %d\n%s", cseq, ps)
	return time.Time{}
}

// firstPerCSeq keeps each transaction's first packet: retransmissions go.
func (ps sipPackets) firstPerCSeq() sipPackets {
	seen := map[string]bool{}
	return ps.keep(func(p sipPacket) bool {
		key := fmt.Sprintf("%d %s %d", p.cseq, p.cseqMethod, p.status)
		if seen[key] {
			return false
		}
		seen[key] = true
		return true
	})
}

func head(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// waitEndedOrSIPp is waitEnded that, should the SIPp caller end first (a
// check of its scenario failed, or a wait timed out), reports SIPp's errors.
func waitEndedOrSIPp(t *testing.T, gw *proc, call *webua.Call, uac *proc, timeout time.Duration) {
	t.Helper()
	select {
	case <-call.Ended():
	case <-uac.done:
		requireSIPpDone(t, gw, uac, 0)
	case <-time.After(timeout):
	}
	waitEnded(t, gw, call, "bye", 5*time.Second)
}

// uacToCarol: SIPp calls carol through Kamailio with a scenario, the webua
// answers and hears it; wire captures SIPp's SIP and RTP.
func uacToCarol(t *testing.T, scenario string, holdMs int, extra ...string) (gw, uac *proc, in *webua.Call, wire *capture) {
	t.Helper()
	_, gw, ua := carolBehindGateway(t)
	wire = startCaptureOf(t, "wire", uacWireFilter)
	uac = startSIPpUAC(t, scenario, "carol", holdMs, extra...)
	in = answerNextOrSIPp(t, gw, ua, uac)
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	return gw, uac, in, wire
}

// uacHungUp: SIPp's BYE ends the call within wait, its checks passed, and
// the capture is stopped for reading.
func uacHungUp(t *testing.T, gw, uac *proc, in *webua.Call, wire *capture, wait time.Duration) {
	t.Helper()
	waitEndedOrSIPp(t, gw, in, uac, wait)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	stopWire(t, wire)
}
