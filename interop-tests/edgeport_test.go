//go:build interop

package interop

import (
	"github.com/imsgate/imsgate/internal/metrics/metricstest"

	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A browser allowed only HTTPS: nftables drops everything the browser
// could send the gateway except TCP to the shared port, where edge.listen
// serves WSS, ICE-TCP and TURN over TLS. JsSIP in Chromium registers over
// WSS on that port, calls the SIPp echo and hears it: once relayed by the
// gateway's TURN server reached by turns: on 443 (iceTransportPolicy
// relay), once with its media over ICE-TCP to the shared port. That one is
// 8443: Chromium pairs no ICE-TCP candidate with a loopback or private
// address on a port below 1024 (its guard against scans of the local
// network), so on loopback ICE-TCP cannot be shown on 443 itself.

const edgeTable = "imsgate_edge" // the test's own nftables table

func TestOnlySharedPort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edgeAddr string
		// relay: TURN over TLS on the shared port only, as
		// iceTransportPolicy relay.
		relay bool
	}{
		{"turn-tls", "127.0.0.1:443", true},
		{"ice-tcp", "127.0.0.1:8443", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edgeAddr := tc.edgeAddr
			certFile, keyFile, spki := writeTestCert(t, artifactDir(t))
			cfg := gatewayConfig("udp")
			cfg = strings.Replace(cfg, "ws:\n", fmt.Sprintf("ws:\n  tls_cert: %s\n  tls_key: %s\n", certFile, keyFile), 1)
			cfg += fmt.Sprintf(`edge:
  listen: %s
turn:
  listen: %s
  users:
    - {username: %s, password: %s}
  allowed_peers: [127.0.0.0/8]
  relay_ports: "%d-%d"
`, edgeAddr, turnAddr, turnUser, turnPassword, turnRelayFirst, turnRelayLast)
			e := newEnvWithGateway(t, cfg)
			if err := waitBound("tcp", edgeAddr, startTimeout); err != nil {
				t.Fatalf("imsgate edge.listen: %v\n%s", err, e.gateway.log())
			}
			blocked := onlySharedPort(t)

			opts := e.browserOptions("jssip", "jssip.html", "call-out-talk", "alice", "sip:echo@imsgate.test")
			opts.WSURL = "wss://" + edgeAddr + "/"
			opts.TalkMs = natpathTalkMs
			opts.ChromiumArgs = []string{"--ignore-certificate-errors-spki-list=" + spki}
			if tc.relay {
				opts.ICEServers = []iceServer{{URLs: []string{"turns:" + edgeAddr + "?transport=tcp"}, Username: turnUser, Credential: turnPassword}}
				opts.ICETransportPolicy = "relay"
			}
			r := startBrowser(t, opts).waitResult(t, browserBudget)
			e.requireOK(t, r, "registered", "confirmed", "ended")
			e.requireBrowserAudio(t, r)
			e.requireTalked(t, r)
			pair := e.requirePair(t, r)
			kinds := edgeKinds(e.gateway)
			t.Logf("blocked by nftables: %d packets; selected pair %s; edge connections by kind %v", blocked(), pair, kinds)
			if kinds["wss"] == 0 {
				e.failf(t, r, "no WSS connection came through the edge port")
			}
			if tc.relay {
				if pair.Local.CandidateType != "relay" || pair.Local.RelayProtocol != "tls" {
					e.failf(t, r, "selected pair %s; want a relay candidate over TLS", pair)
				}
				if kinds["turn-tls"] == 0 {
					e.failf(t, r, "no TURN over TLS came through the edge port")
				}
				e.requireTURNAllocation(t, r, "tls", regexp.MustCompile(`^`+turnUser+`$`))
				e.requireWebRTCPath(t, r, "udp", inRelayRange)
			} else {
				if _, port, _ := strings.Cut(edgeAddr, ":"); pair.Local.Protocol != "tcp" || strconv.Itoa(pair.Remote.Port) != port {
					e.failf(t, r, "selected pair %s; want tcp to the shared port %s", pair, port)
				}
				if kinds["ice-tcp"] == 0 {
					e.failf(t, r, "no ICE-TCP connection came through the edge port")
				}
				e.requireWebRTCPath(t, r, "tcp", nil)
			}
			e.requireSIPpRTP(t, r, echoMediaPort)
			requireEdgeMetrics(t, e, r, kinds, tc.relay)
		})
	}
}

// requireEdgeMetrics: /metrics counts what the log says came through the
// shared port, and the call's media path (TURN over TLS, or ICE-TCP).
func requireEdgeMetrics(t *testing.T, e *env, r browserResult, kinds map[string]int, relay bool) {
	t.Helper()
	code, body := scrape(t, "")
	families, err := metricstest.Parse(body)
	if code != 200 || err != nil {
		e.failf(t, r, "/metrics: %d %v", code, err)
	}
	for kind, n := range kinds {
		if got, _ := families.Sum("imsgate_edge_connections_total", map[string]string{"kind": kind}); got < float64(n) {
			e.failf(t, r, "imsgate_edge_connections_total{kind=%q} = %v, the log has %d", kind, got, n)
		}
	}
	path := "ice-tcp"
	if relay {
		path = "turn-tls"
		if got, _ := families.Sum("imsgate_turn_allocations_total", map[string]string{"transport": "tls"}); got < 1 {
			e.failf(t, r, "imsgate_turn_allocations_total{transport=\"tls\"} = %v", got)
		}
	}
	got, _ := families.Sum("imsgate_call_media_paths_total", map[string]string{"path": path})
	t.Logf("/metrics: edge connections %v; media path %s %v", kinds, path, got)
	if got < 1 {
		e.failf(t, r, "imsgate_call_media_paths_total{path=%q} = %v", path, got)
	}
}

// onlySharedPort drops what the browser could send the gateway other than TCP
// to the shared port: UDP to its media port (except from its own TURN relays), TCP to
// its plain WebSocket port, UDP and TCP to its TURN port. Kamailio, SIPp
// and the page server are left alone.
func onlySharedPort(t *testing.T) (dropped func() int) {
	t.Helper()
	return nftDrop(t, edgeTable,
		fmt.Sprintf("udp dport %d udp sport != %d-%d counter drop", webrtcPort, turnRelayFirst, turnRelayLast),
		"tcp dport { 8080, 3478 } counter drop",
		"udp dport 3478 counter drop")
}

// edgeKinds counts the gateway's "edge connection" log lines by kind.
func edgeKinds(p *proc) map[string]int {
	out := map[string]int{}
	for _, f := range gatewayLogged(p, "edge connection") {
		if k, ok := f["kind"].(string); ok {
			out[k]++
		}
	}
	return out
}
