//go:build interop

package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/imsgate/imsgate/interop-tests/webua"
)

// SIP reliability against SIPp losing messages on purpose: the 2xx/ACK
// handshake of RFC 3261 13.2.2.4 and 13.3.1.4 (and RFC 6026 for 2xx that
// come after the first). The browser is the Go webua over the gateway's
// real WebSocket; every call that is answered must carry media.

const (
	// t1 is RFC 3261's T1, the gateway's default.
	t1 = 500 * time.Millisecond
	// minEchoed is how much of the webua's RTP must come back through
	// SIPp's -rtp_echo (50 packets: one second of 20 ms PCMU).
	minEchoed = 50
	// minHeard is how much of SIPp's tone the webua must receive.
	minHeard = 50
	callStep = 15 * time.Second
	// gatewaySIPPort is gatewaySIPAddr's port: the gateway's side toward
	// the core, where the wire capture decodes SIP.
	gatewaySIPPort = 5070
	// wireFilter captures SIP at the gateway's core side and RTP at SIPp.
	wireFilter = "udp port 5070 or udp portrange 6000-6199"
)

// TestCallOutFirstACKLost: browser → gateway → SIPp UAS, which loses the
// gateway's first ACK. SIPp retransmits its 200; the gateway must ACK that
// 200 again (RFC 3261 13.2.2.4), and the call goes on with media.
func TestCallOutFirstACKLost(t *testing.T) {
	wire := startCaptureOf(t, "wire", wireFilter)
	_, _, call := callSIPpUAS(t, "uas_ack_lost.xml")
	stopWire(t, wire)

	sip := wire.sipPackets(t, gatewaySIPPort)
	oks := sip.from(echoUASPort).responses(200, "INVITE")
	acks := sip.to(echoUASPort).requests("ACK")
	lost := readSIPpTrace(t, "sipp-uas-messages.log").filter(sippReceived, "ACK ", "ACK").lost()
	t.Logf("on the wire: SIPp sent its 200 (INVITE) %d times at %s; the gateway sent ACK %d times at %s; SIPp dropped %d ACK as lost",
		len(oks), oks.offsets(oks.first()), len(acks), acks.offsets(oks.first()), len(lost))
	logMedia(t, call)
	if len(lost) == 0 {
		t.Fatalf("SIPp lost no ACK: the first ACK came later than 300 ms after the 200, so nothing was tested\n%s", sip)
	}
	if len(oks) < 2 {
		t.Fatalf("SIPp sent its 200 %d times, want a retransmission after the lost ACK\n%s", len(oks), sip)
	}
	// Every 200 that reached the gateway, first or retransmitted, is ACKed.
	if len(acks) != len(oks) {
		t.Errorf("gateway sent %d ACKs for %d copies of the 200 (RFC 3261 13.2.2.4: one per 2xx received)\n%s", len(acks), len(oks), sip)
	}
	if len(acks) == 0 || !acks[len(acks)-1].at.After(oks[1].at) {
		t.Errorf("no ACK came after the retransmitted 200\n%s", sip)
	}
	// It is the same ACK again (RFC 3261 13.2.2.4), not a new request.
	for _, a := range acks {
		if a.branch != acks[0].branch {
			t.Errorf("ACKs with branches %s and %s: want the first ACK resent", acks[0].branch, a.branch)
		}
	}
}

// TestCallInFirst200Lost: SIPp UAC → Kamailio → gateway → browser. SIPp
// loses the gateway's first 200 OK; the gateway must retransmit its 2xx
// (T1, 2T1, ... RFC 3261 13.3.1.4) until SIPp's ACK comes, then stop.
func TestCallInFirst200Lost(t *testing.T) {
	_, gw, ua := carolBehindGateway(t)
	wire := startCaptureOf(t, "wire", wireFilter)

	in := takeCallFromSIPp(t, gw, ua, wire, "uac_200_lost.xml", 3000, "-nr")

	sip := wire.sipPackets(t, gatewaySIPPort)
	oks := sip.from(gatewaySIPPort).responses(200, "INVITE")
	acks := sip.to(gatewaySIPPort).requests("ACK")
	tr := readSIPpTrace(t, "sipp-uac-messages.log")
	atSIPp := tr.filter(sippReceived, "SIP/2.0 200", "INVITE")
	t.Logf("on the wire: the gateway sent its 200 (INVITE) %d times at %s; ACK reached it %d times at %s; SIPp got the 200 %d times (first one dropped)",
		len(oks), oks.offsets(oks.first()), len(acks), acks.offsets(oks.first()), len(atSIPp))
	logMedia(t, in)
	if len(oks) < 2 || len(atSIPp) < 2 {
		t.Fatalf("the gateway's 200 went out %d times and reached SIPp %d times: no retransmission after the lost one\n%s", len(oks), len(atSIPp), sip)
	}
	if gap := oks[1].at.Sub(oks[0].at); gap < t1*8/10 || gap > 2*t1 {
		t.Errorf("first 2xx retransmission %s after the 200, want about T1 (%s)", gap, t1)
	}
	if len(acks) != 1 || acks[0].at.Before(oks[1].at) {
		t.Fatalf("want one ACK, after the retransmitted 200\n%s", sip)
	}
	// Retransmissions stop at the ACK.
	for _, ok := range oks {
		if ok.at.After(acks[0].at) {
			t.Errorf("gateway sent its 200 again at %s, %s after the ACK reached it\n%s",
				ok.at.Format("15:04:05.000"), ok.at.Sub(acks[0].at), sip)
		}
	}
}

// TestCallInNeverACKed: SIPp UAC → Kamailio → gateway → browser, and SIPp
// never ACKs the 200. After 64·T1 the gateway gives up on the ACK and ends
// the call with a BYE on both legs (RFC 3261 13.3.1.4).
func TestCallInNeverACKed(t *testing.T) {
	_, gw, ua := carolBehindGateway(t)
	wire := startCaptureOf(t, "wire", wireFilter)

	uac := startSIPpUAC(t, "uac_no_ack.xml", "carol", 0)
	in := answerNext(t, gw, ua)
	answered := time.Now()
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	waitEnded(t, gw, in, "bye", 64*t1+15*time.Second)
	browserBye := time.Since(answered)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	requireSIPpMedia(t, wire, uacMediaPort)

	sip := wire.sipPackets(t, gatewaySIPPort)
	oks := sip.from(gatewaySIPPort).responses(200, "INVITE")
	acks := sip.to(gatewaySIPPort).requests("ACK")
	byes := sip.from(gatewaySIPPort).requests("BYE")
	byeOKs := sip.to(gatewaySIPPort).responses(200, "BYE")
	t.Logf("on the wire: the gateway sent its 200 (INVITE) %d times at %s, then BYE at %s (answered 200 %d times); ACKs it got: %d",
		len(oks), oks.offsets(oks.first()), byes.offsets(oks.first()), len(byeOKs), len(acks))
	t.Logf("browser: answered, BYE %s later", browserBye.Round(time.Millisecond))
	logMedia(t, in)
	if len(acks) != 0 {
		t.Fatalf("an ACK reached the gateway; the scenario sends none\n%s", sip)
	}
	if len(oks) == 0 || len(byes) != 1 || len(byeOKs) != 1 {
		t.Fatalf("want the 200, then one BYE toward SIPp answered 200; got %d, %d, %d\n%s", len(oks), len(byes), len(byeOKs), sip)
	}
	// 64·T1 from the first 2xx; allow scheduling slack.
	if wait := byes[0].at.Sub(oks[0].at); wait < 64*t1-time.Second || wait > 64*t1+3*time.Second {
		t.Errorf("BYE left %s after the 200, want 64·T1 = %s", wait, 64*t1)
	}
	if browserBye < 64*t1-2*time.Second || browserBye > 64*t1+4*time.Second {
		t.Errorf("browser got its BYE %s after answering, want about 64·T1 = %s", browserBye, 64*t1)
	}
	// T1 doubling up to T2 = 4 s within 32 s: +0.5, 1.5, 3.5, 7.5, ... 31.5 s.
	if len(oks) < 8 {
		t.Errorf("gateway sent its 200 %d times in 64·T1, want the first and about 10 retransmissions\n%s", len(oks), sip)
	}
	for _, ok := range oks {
		if ok.at.After(byes[0].at) {
			t.Errorf("gateway sent its 200 at %s, after its BYE", ok.at.Format("15:04:05.000"))
		}
	}
	if !strings.Contains(gw.log(), "no ACK for our 2xx") {
		t.Errorf("gateway log does not say why it ended the call (no ACK for our 2xx)")
	}
}

// TestCallOutForked2xx: browser → gateway → SIPp UAS playing two forks.
// Fork A's 200 makes the dialog; fork B's 200 for the same INVITE comes
// after A's ACK (RFC 6026: the INVITE client transaction is then Accepted).
// The gateway must ACK B's 2xx and BYE it at B's Contact, keep the call
// with A (media through A) and never show B to the browser.
func TestCallOutForked2xx(t *testing.T) {
	wire := startCaptureOf(t, "wire", wireFilter)
	gw, ua, call := callSIPpUAS(t, "uas_fork_2xx.xml")
	stopWire(t, wire)

	sip := wire.sipPackets(t, gatewaySIPPort)
	oks := sip.from(echoUASPort).responses(200, "INVITE")
	acks := sip.to(echoUASPort).requests("ACK")
	byes := sip.to(echoUASPort).requests("BYE")
	t.Logf("on the wire: SIPp's 200s with To tags %s; the gateway's ACKs to %s; its BYEs to %s",
		tags(oks), tags(acks), ruris(byes))
	logMedia(t, call)
	if len(oks) != 2 || oks[0].toTag != "forkA" || oks[1].toTag != "forkB" {
		t.Fatalf("want SIPp's 200 from fork A, then from fork B\n%s", sip)
	}
	if len(acks) != 2 || acks[0].toTag != "forkA" || acks[1].toTag != "forkB" {
		t.Errorf("want one ACK for fork A, then one for fork B\n%s", sip)
	}
	if len(byes) != 2 || byes[0].toTag != "forkB" || !strings.HasPrefix(byes[0].ruri, "sip:forkB@") ||
		byes[1].toTag != "forkA" || !strings.HasPrefix(byes[1].ruri, "sip:forkA@") {
		t.Errorf("want a BYE to fork B's Contact, then the hangup's BYE to fork A's\n%s", sip)
	}
	if !strings.Contains(gw.log(), "2xx from another fork acknowledged and ended") {
		t.Errorf("gateway log does not mention the second fork")
	}
	// The browser has one dialog: a second 200 must not reach it.
	for drained := false; !drained; {
		select {
		case raw, ok := <-ua.Unmatched():
			if !ok {
				drained = true
			} else if bytes.HasPrefix(raw, []byte("SIP/2.0 2")) {
				t.Errorf("browser got a 2xx it had no transaction for (the other fork's?):\n%s", raw)
			}
		default:
			drained = true
		}
	}
}

// gatewayDirectConfig is gatewayConfig over UDP with SIPp as the upstream,
// no Kamailio in between: every SIP message SIPp drops or repeats is one
// the gateway itself sent or gets. SIPp listens at directSIPpPort; at port,
// where the gateway sends, a registrarFront answers the REGISTERs without
// which the gateway relays no call (passthrough mode).
func gatewayDirectConfig(t *testing.T, port int) string {
	t.Helper()
	startRegistrarFront(t, port, directSIPpPort)
	kamailio := fmt.Sprintf("sip:%s;transport=udp", kamailioAddr)
	cfg := gatewayConfig("udp")
	if !strings.Contains(cfg, kamailio) {
		t.Fatalf("gatewayConfig no longer names %s as the upstream:\n%s", kamailio, cfg)
	}
	return strings.Replace(cfg, kamailio, fmt.Sprintf("sip:127.0.0.1:%d;transport=udp", port), 1)
}

// failGateway ends the test with the gateway's log tail, where the cause of
// a SIP failure usually shows.
func failGateway(t *testing.T, gw *proc, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s\n--- imsgate log (tail):\n%s\n(all logs: %s)", fmt.Sprintf(format, args...), tail(gw.log(), 40), artifactDir(t))
}

// callSIPpUAS: the browser (alice) calls sip:echo through a gateway whose
// upstream is SIPp playing scenario; the echo must come back; the browser
// hangs up and SIPp must pass.
func callSIPpUAS(t *testing.T, scenario string) (gw *proc, ua *webua.UA, call *webua.Call) {
	t.Helper()
	uas := startSIPpUAS(t, "sipp-uas", scenario, directSIPpPort, echoMediaPort, true, "-m", "1")
	gw = startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
	ua = dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)
	call = placeCall(t, gw, ua, "sip:echo@imsgate.test")
	waitMedia(t, gw, call, "echoed", func(s webua.MediaStats) uint64 { return s.Echoed }, minEchoed)
	hangUp(t, gw, call)
	requireSIPpDone(t, gw, uas, 10*time.Second)
	return gw, ua, call
}

// carolBehindGateway: Kamailio as registrar and proxy, the gateway in front
// of it, and the Go browser registered through it as carol.
func carolBehindGateway(t *testing.T) (kamailio, gw *proc, ua *webua.UA) {
	t.Helper()
	kamailio = startKamailio(t)
	gw = startGateway(t, gatewayConfig("udp"), repoRoot())
	ua = dialWebUA(t, "sip:carol@imsgate.test")
	registerWebUA(t, gw, ua)
	return kamailio, gw, ua
}

// takeCallFromSIPp: SIPp plays scenario calling carol through Kamailio;
// the browser answers and hears SIPp, SIPp hangs up and passes, and c saw
// RTP both ways at SIPp's media port.
func takeCallFromSIPp(t *testing.T, gw *proc, ua *webua.UA, c *capture, scenario string, holdMs int, extra ...string) *webua.Call {
	t.Helper()
	uac := startSIPpUAC(t, scenario, "carol", holdMs, extra...)
	in := answerNext(t, gw, ua)
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	waitEnded(t, gw, in, "bye", 20*time.Second)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	requireSIPpMedia(t, c, uacMediaPort)
	return in
}

func placeCall(t *testing.T, gw *proc, ua *webua.UA, target string) *webua.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	call, res := inviteResult(ctx, t, gw, ua, target)
	if !res.IsSuccess() {
		failGateway(t, gw, "invite %s: %d %s", target, res.StatusCode, res.Reason)
	}
	return call
}

// inviteResult places a call and waits for its final response.
func inviteResult(ctx context.Context, t *testing.T, gw *proc, ua *webua.UA, target string, opts ...webua.InviteOption) (*webua.Call, *sip.Response) {
	t.Helper()
	call, err := ua.Invite(ctx, target, opts...)
	if err != nil {
		failGateway(t, gw, "invite %s: %v", target, err)
	}
	res, err := call.Result(ctx)
	if err != nil {
		failGateway(t, gw, "invite %s: %v", target, err)
	}
	return call, res
}

// answerNext takes the next incoming call, rings and answers it; Answer
// returns once the gateway's ACK is in.
func answerNext(t *testing.T, gw *proc, ua *webua.UA) *webua.Call {
	t.Helper()
	var in *webua.Call
	select {
	case c, ok := <-ua.Incoming():
		if !ok {
			failGateway(t, gw, "websocket closed before a call came in")
		}
		in = c
	case <-time.After(callStep):
		failGateway(t, gw, "no call reached the browser within %s", callStep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if err := in.Ring(ctx); err != nil {
		failGateway(t, gw, "ring: %v", err)
	}
	if err := in.Answer(ctx); err != nil {
		failGateway(t, gw, "answer: %v", err)
	}
	return in
}

// waitMedia waits until counter(stats) reaches want.
func waitMedia(t *testing.T, gw *proc, call *webua.Call, what string, counter func(webua.MediaStats) uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(callStep)
	for counter(call.Media()) < want {
		select {
		case <-call.Ended():
			failGateway(t, gw, "call ended (%s) with %d RTP packets %s, want %d", call.EndReason(), counter(call.Media()), what, want)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			failGateway(t, gw, "only %d RTP packets %s in %s, want %d: %+v", counter(call.Media()), what, callStep, want, call.Media())
		}
	}
}

func waitEnded(t *testing.T, gw *proc, call *webua.Call, reason string, timeout time.Duration) {
	t.Helper()
	select {
	case <-call.Ended():
	case <-time.After(timeout):
		failGateway(t, gw, "browser's call still up after %s", timeout)
	}
	if got := call.EndReason(); got != reason {
		failGateway(t, gw, "browser's call ended by %q, want %q", got, reason)
	}
}

func hangUp(t *testing.T, gw *proc, call *webua.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if err := call.HangUp(ctx); err != nil {
		failGateway(t, gw, "hang up: %v", err)
	}
}

func logMedia(t *testing.T, call *webua.Call) {
	t.Helper()
	s := call.Media()
	t.Logf("webua RTP: sent %d, received %d, echoed %d (RTT min/avg/max %s/%s/%s)",
		s.Sent, s.Received, s.Echoed, s.RTTMin, s.RTTAvg, s.RTTMax)
}

// requireSIPpDone: the scenario ran to its end and SIPp says the call passed.
func requireSIPpDone(t *testing.T, gw *proc, sipp *proc, timeout time.Duration) {
	t.Helper()
	if err := sipp.wait(timeout); err != nil {
		// SIPp's own account of a failed check is in its error file.
		errs, _ := os.ReadFile(filepath.Join(artifactDir(t), sipp.name+"-errors.log"))
		failGateway(t, gw, "%s failed: %v\n--- %s errors (head):\n%s\n--- %s log (tail):\n%s",
			sipp.name, err, sipp.name, head(string(errs), 40), sipp.name, tail(sipp.log(), 12))
	}
}

func tags(ps sipPackets) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.toTag)
	}
	return out
}

func ruris(ps sipPackets) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s (to-tag %s)", p.ruri, p.toTag))
	}
	return out
}

// stopWire ends a capture once what was sent last is in it: tshark's
// capture child hands packets over in batches and drops the batch still
// pending when it is stopped.
func stopWire(t *testing.T, c *capture) {
	t.Helper()
	time.Sleep(time.Second)
	c.stop(t)
}

// requireSIPpMedia: tshark saw RTP reach SIPp's media port and leave it.
func requireSIPpMedia(t *testing.T, c *capture, port int) {
	t.Helper()
	stopWire(t, c)
	in := c.count(t, fmt.Sprintf("udp.dstport == %d", port))
	out := c.count(t, fmt.Sprintf("udp.srcport == %d", port))
	t.Logf("tshark at SIPp media port %d: %d packets in, %d out", port, in, out)
	if in == 0 || out == 0 {
		t.Fatalf("RTP at SIPp's media port %d: %d in, %d out; want both", port, in, out)
	}
}
