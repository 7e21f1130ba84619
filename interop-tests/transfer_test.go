//go:build interop

package interop

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Transfer (RFC 3515, RFC 3891) across the gateway: the Go webua calls
// SIPp's uas_transfer.xml straight behind the gateway, which plays the
// transferee, the transferor or a plain echo by the called user.

// TestBlindTransferByBrowser: the browser REFERs SIPp (the transferee) to
// carol; SIPp gets Refer-To and Referred-By, its 202 and its NOTIFYs
// (sipfrag 100, then 200) reach the browser, which then hangs up.
func TestBlindTransferByBrowser(t *testing.T) {
	gw, uas, ua := startTransferPeers(t, 1)
	call := talk(t, gw, ua, "sip:transferee@imsgate.test")
	refer(t, gw, call, "sip:carol@imsgate.test")
	awaitReferNotifies(t, gw, call)
	hangUp(t, gw, call)
	requireSIPpDone(t, gw, uas, 10*time.Second)
	requireReferToCarol(t, gw)
}

// requireReferToCarol: SIPp got alice's REFER to carol, with Referred-By.
func requireReferToCarol(t *testing.T, gw *proc) {
	t.Helper()
	got := sippRefer(t)
	t.Logf("SIPp got REFER with Refer-To %s, Referred-By %s", got.header("Refer-To"), got.header("Referred-By"))
	if !strings.Contains(got.header("Refer-To"), "sip:carol@imsgate.test") || !strings.Contains(got.header("Referred-By"), "alice") {
		failGateway(t, gw, "REFER reached SIPp with Refer-To %q and Referred-By %q, want carol and alice", got.header("Refer-To"), got.header("Referred-By"))
	}
}

// TestBlindTransferByFarEnd: SIPp (the transferor) REFERs the browser to
// sip:echo; the browser accepts, reports progress by NOTIFY as it calls
// the echo, audio flows on the new call, and SIPp hangs up the old one.
func TestBlindTransferByFarEnd(t *testing.T) {
	gw, uas, ua := startTransferPeers(t, 2)
	call := talk(t, gw, ua, "sip:transferor@imsgate.test")
	req := awaitInDialog(t, gw, call, sip.REFER, callStep)
	t.Logf("browser got REFER to %s", req.ReferTo)
	if !strings.HasPrefix(req.ReferTo, "sip:echo@imsgate.test") {
		failGateway(t, gw, "REFER reached the browser with Refer-To %q, want sip:echo@imsgate.test", req.ReferTo)
	}
	notifyRefer(t, gw, call, 100, "Trying")
	transferred := talk(t, gw, ua, req.ReferTo)
	notifyRefer(t, gw, call, 200, "OK")
	waitEnded(t, gw, call, "bye", callStep)
	logMedia(t, transferred)
	hangUp(t, gw, transferred)
	requireSIPpDone(t, gw, uas, 10*time.Second)
}

// TestAttendedTransferReplaces: the browser has calls to SIPp's transferee
// and target, and REFERs the first with a Refer-To whose Replaces names
// its dialog of the second. SIPp must get the Replaces rewritten to the
// gateway's dialog with SIPp for that call: its Call-ID, to-tag SIPp's
// tag, from-tag the gateway's.
func TestAttendedTransferReplaces(t *testing.T) {
	gw, uas, ua := startTransferPeers(t, 2)
	first := talk(t, gw, ua, "sip:transferee@imsgate.test")
	second := talk(t, gw, ua, "sip:target@imsgate.test")
	refer(t, gw, first, webua.ReplacesURI("sip:target@imsgate.test", second.Dialog()))
	awaitReferNotifies(t, gw, first)
	hangUp(t, gw, first)
	hangUp(t, gw, second)
	requireSIPpDone(t, gw, uas, 10*time.Second)

	tr := readSIPpTrace(t, "sipp-uas-messages.log")
	target := tr.filter(sippReceived, "INVITE sip:target@", "INVITE")
	if len(target) == 0 {
		t.Fatalf("SIPp's trace has no INVITE to target")
	}
	callID := target[0].header("Call-ID")
	want := map[string]string{"call-id": callID, "from-tag": tagParam(target[0].header("From"))}
	for _, m := range tr.filter(sippSent, "SIP/2.0 200", "INVITE") {
		if m.header("Call-ID") == callID {
			want["to-tag"] = tagParam(m.header("To"))
		}
	}
	referTo := sippRefer(t).header("Refer-To")
	got := replacesOf(referTo)
	t.Logf("SIPp got Refer-To %s: Replaces %v; its dialog with the gateway for the target: %v", referTo, got, want)
	for k, v := range want {
		if got[k] != v {
			failGateway(t, gw, "Replaces %s is %q, want %q (the gateway's dialog with SIPp for the second call); Refer-To %s", k, got[k], v, referTo)
		}
	}
	if browser := second.Dialog().CallID; strings.Contains(referTo, browser) {
		failGateway(t, gw, "Refer-To still names the browser's Call-ID %s", browser)
	}
}

// startTransferPeers: SIPp's transfer UAS serving calls calls, the gateway
// in front of it and the webua as alice.
func startTransferPeers(t *testing.T, calls int) (gw, uas *proc, ua *webua.UA) {
	t.Helper()
	uas = startSIPpUAS(t, "sipp-uas", "uas_transfer.xml", directSIPpPort, echoMediaPort, true, "-m", strconv.Itoa(calls))
	gw = startGateway(t, gatewayDirectConfig(t, echoUASPort), repoRoot())
	ua = dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)
	return gw, uas, ua
}

// talk places a call and waits for its echo: media flows.
func talk(t *testing.T, gw *proc, ua *webua.UA, target string) *webua.Call {
	t.Helper()
	call := placeCall(t, gw, ua, target)
	waitMedia(t, gw, call, "echoed", func(s webua.MediaStats) uint64 { return s.Echoed }, minEchoed)
	return call
}

func refer(t *testing.T, gw *proc, call *webua.Call, referTo string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	res, err := call.Refer(ctx, referTo)
	if err != nil || res.StatusCode != sip.StatusAccepted {
		failGateway(t, gw, "REFER to %s: %v %v, want 202", referTo, res, err)
	}
}

func notifyRefer(t *testing.T, gw *proc, call *webua.Call, status int, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	if res, err := call.NotifyRefer(ctx, status, reason); err != nil || !res.IsSuccess() {
		failGateway(t, gw, "NOTIFY (sipfrag %d): %v %v", status, res, err)
	}
}

// awaitReferNotifies: the transferee's NOTIFYs reach the browser, Event:
// refer, sipfrag 100 then 200.
func awaitReferNotifies(t *testing.T, gw *proc, call *webua.Call) {
	t.Helper()
	for _, frag := range []string{"SIP/2.0 100", "SIP/2.0 200"} {
		n := awaitInDialog(t, gw, call, sip.NOTIFY, callStep)
		if !strings.HasPrefix(n.Event, "refer") || !strings.HasPrefix(n.Body, frag) {
			failGateway(t, gw, "browser got NOTIFY Event %q with %q, want Event: refer and %q", n.Event, n.Body, frag)
		}
	}
}

// sippRefer is the REFER SIPp received.
func sippRefer(t *testing.T) sippMsg {
	t.Helper()
	refers := readSIPpTrace(t, "sipp-uas-messages.log").filter(sippReceived, "REFER ", "REFER")
	if len(refers) == 0 {
		t.Fatalf("SIPp's trace has no REFER")
	}
	return refers[0]
}

// replacesOf reads the Replaces URI header of a Refer-To (RFC 3891 §6.1):
// call-id, to-tag and from-tag.
func replacesOf(referTo string) map[string]string {
	out := map[string]string{}
	_, h, ok := strings.Cut(strings.Trim(referTo, "<> "), "?")
	if !ok {
		return out
	}
	for _, kv := range strings.Split(h, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.EqualFold(k, "Replaces") {
			continue
		}
		if un, err := url.PathUnescape(v); err == nil {
			v = un
		}
		parts := strings.Split(v, ";")
		out["call-id"] = parts[0]
		for _, p := range parts[1:] {
			if pk, pv, ok := strings.Cut(p, "="); ok {
				out[strings.ToLower(strings.TrimSpace(pk))] = pv
			}
		}
	}
	return out
}

// tagParam is a From or To header value's tag.
func tagParam(h string) string {
	for _, p := range strings.Split(h, ";")[1:] {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "tag") {
			return v
		}
	}
	return ""
}
