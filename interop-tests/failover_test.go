//go:build interop

package interop

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/metrics/metricstest"
	"github.com/imsgate/imsgate/interop-tests/webua"
)

const (
	kamailio2Addr = "127.0.0.2:5060"                         // the second Kamailio (-A SECOND)
	kamailio1URI  = "sip:" + kamailioAddr + ";transport=udp" // upstream.proxy as gatewayConfig writes it
	kamailio2URI  = "sip:" + kamailio2Addr
)

// TestUpstreamFailover: the gateway's upstream is Kamailio on 127.0.0.1,
// with a second Kamailio on 127.0.0.2 as upstream.fallback and an OPTIONS
// keepalive every second. A browser (webua) calls the SIPp echo through
// the first; the first is stopped, the gateway moves to the second and the
// next call goes through it (its log authorizes the INVITE); the first
// comes back, the gateway takes it back and the next call goes through it
// again. With both stopped /readyz answers 503.
func TestUpstreamFailover(t *testing.T) {
	first := startKamailio(t)
	second := startSecondKamailio(t)
	startSIPpUAS(t, "sipp-echo", "uas_echo.xml", echoUASPort, echoMediaPort, true)
	cfg := strings.Replace(gatewayConfig("udp"), "  domain: imsgate.test\n",
		"  domain: imsgate.test\n  fallback: [\""+kamailio2URI+"\"]\n  keepalive_interval: 1s\n", 1)
	gw := startGateway(t, cfg, repoRoot())
	ua := dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)

	requireInUse(t, gw, kamailio1URI)
	echoCall(t, gw, ua, "through the first Kamailio")
	requireAuthorized(t, gw, first, "the first Kamailio")

	first.stop(t)
	requireInUse(t, gw, kamailio2URI)
	if code, body := getAdmin(t, "/readyz"); code != http.StatusOK {
		failGateway(t, gw, "/readyz with the fallback answering: %d %s", code, body)
	}
	echoCall(t, gw, ua, "through the second Kamailio")
	requireAuthorized(t, gw, second, "the second Kamailio")

	first = startKamailio(t)
	requireInUse(t, gw, kamailio1URI)
	echoCall(t, gw, ua, "through the first Kamailio, back")
	requireAuthorized(t, gw, first, "the first Kamailio, back")

	first.stop(t)
	second.stop(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := getAdmin(t, "/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "no upstream") {
			t.Logf("/readyz with no upstream answering: %d %s", code, strings.TrimSpace(body))
			break
		}
		if time.Now().After(deadline) {
			failGateway(t, gw, "/readyz with both Kamailios stopped: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, f := range gatewayLogged(gw, "upstream switched: requests outside a dialog now go here") {
		t.Logf("gateway: upstream switched to %v from %v", f["upstream"], f["before"])
	}
}

// startSecondKamailio runs the interop Kamailio again on 127.0.0.2:5060.
func startSecondKamailio(t *testing.T) *proc {
	t.Helper()
	run := t.TempDir()
	p := startProc(t, "kamailio-2", procOptions{dir: run}, "kamailio", "-f", filepath.Join(interopDir(), "kamailio", "kamailio.cfg"),
		"-DD", "-E", "-Y", run, "-P", filepath.Join(run, "kamailio.pid"), "-w", run, "-A", "SECOND")
	if err := waitBound("udp", kamailio2Addr, startTimeout); err != nil {
		t.Fatalf("kamailio-2: %v\n%s", err, p.log())
	}
	return p
}

// requireInUse waits for /metrics to name uri as the upstream in use.
func requireInUse(t *testing.T, gw *proc, uri string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := scrape(t, "")
		families, err := metricstest.Parse(body)
		if err == nil {
			if v, _ := families.Sum("imsgate_upstream_in_use", map[string]string{"upstream": uri}); v == 1 {
				t.Logf("/metrics: upstream in use %s", uri)
				return
			}
		}
		if time.Now().After(deadline) {
			failGateway(t, gw, "the gateway did not take %s:\n%s", uri, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// echoCall calls the SIPp echo, hears it, and hangs up.
func echoCall(t *testing.T, gw *proc, ua *webua.UA, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := ua.Invite(ctx, "sip:echo@imsgate.test")
	if err != nil {
		failGateway(t, gw, "%s: invite: %v", what, err)
	}
	res, err := call.Result(ctx)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		// Kamailio challenges the INVITE; a browser answers with a new one.
		if call, err = ua.Invite(ctx, "sip:echo@imsgate.test", webua.WithChallenge(res)); err != nil {
			failGateway(t, gw, "%s: invite with credentials: %v", what, err)
		}
		res, err = call.Result(ctx)
	}
	if err != nil || res.StatusCode != 200 {
		failGateway(t, gw, "%s: %v %v", what, res, err)
	}
	for call.Media().Echoed < 10 {
		if ctx.Err() != nil {
			failGateway(t, gw, "%s: no echoed audio", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: answered, %d packets echoed", what, call.Media().Echoed)
	if err := call.HangUp(ctx); err != nil {
		failGateway(t, gw, "%s: hang up: %v", what, err)
	}
}

// requireAuthorized: k's log authorized an INVITE from the gateway.
func requireAuthorized(t *testing.T, gw *proc, k *proc, which string) {
	t.Helper()
	if !strings.Contains(k.log(), "authorized INVITE") {
		failGateway(t, gw, "%s authorized no INVITE:\n%s", which, tail(k.log(), 2000))
	}
}

// getAdmin GETs a path of the gateway's admin listener.
func getAdmin(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + adminAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, res.Body)
	return res.StatusCode, b.String()
}

// dnsAddr is the test's DNS server (dnsmasq) for RFC 3263.
const dnsAddr = "127.0.0.1:5353"

// TestUpstreamByDNS: no upstream.proxy; the gateway finds imsgate.test's
// SIP servers by RFC 3263 from dnsmasq: a NAPTR record for SIP+D2U names
// _sip._udp.imsgate.test, whose SRV records name the first Kamailio
// (priority 10) and the second (priority 20). The call goes through the
// first; with the first stopped, through the second.
func TestUpstreamByDNS(t *testing.T) {
	if !onPath("dnsmasq") {
		t.Fatal("dnsmasq is not installed (bash .ci/run installs dnsmasq-base)")
	}
	startProc(t, "dnsmasq", procOptions{}, "dnsmasq", "--no-daemon", "--keep-in-foreground", "--log-queries", "--log-facility=-",
		"--port=5353", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root",
		"--pid-file=",
		"--naptr-record=imsgate.test,10,10,s,SIP+D2U,,_sip._udp.imsgate.test",
		"--naptr-record=imsgate.test,20,10,s,SIP+D2T,,_sip._tcp.imsgate.test",
		"--srv-host=_sip._udp.imsgate.test,k1.imsgate.test,5060,10,0",
		"--srv-host=_sip._udp.imsgate.test,k2.imsgate.test,5060,20,0",
		"--host-record=k1.imsgate.test,127.0.0.1",
		"--host-record=k2.imsgate.test,127.0.0.2")
	if err := waitBound("udp", dnsAddr, startTimeout); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	first := startKamailio(t)
	second := startSecondKamailio(t)
	startSIPpUAS(t, "sipp-echo", "uas_echo.xml", echoUASPort, echoMediaPort, true)
	cfg := gatewayConfig("udp")
	proxyLine := "  proxy: \"sip:" + kamailioAddr + ";transport=udp\"\n"
	if !strings.Contains(cfg, proxyLine) {
		t.Fatalf("gatewayConfig has no %q to take out", proxyLine)
	}
	cfg = strings.Replace(cfg, proxyLine, "  dns_server: "+dnsAddr+"\n  keepalive_interval: 1s\n", 1)
	gw := startGateway(t, cfg, repoRoot())
	requireInUse(t, gw, "sip:127.0.0.1:5060;transport=udp")
	for _, f := range gatewayLogged(gw, "upstream servers found by RFC 3263") {
		t.Logf("gateway: found %v for %v (ttl %v)", f["servers"], f["domain"], f["ttl"])
	}
	ua := dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)
	echoCall(t, gw, ua, "through k1.imsgate.test (SRV priority 10)")
	requireAuthorized(t, gw, first, "the first Kamailio")

	first.stop(t)
	requireInUse(t, gw, "sip:127.0.0.2:5060;transport=udp")
	echoCall(t, gw, ua, "through k2.imsgate.test (SRV priority 20)")
	requireAuthorized(t, gw, second, "the second Kamailio")
}
