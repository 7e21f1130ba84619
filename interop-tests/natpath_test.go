//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Media paths for browsers whose network blocks direct UDP: ICE-TCP to the
// gateway's passive candidate (media.webrtc_tcp_port, RFC 6544) and relay
// through the gateway's own TURN server (turn.*, RFC 8656) over UDP, TCP
// and TLS, with long-term credentials or REST ones from /ice-servers.
// Chromium's getStats() names the candidate pair it chose; tshark and the
// gateway's log show the packets took that path.

const (
	webrtcPort     = 10000 // media.webrtc_port in gatewayConfig
	webrtcTCPPort  = 10001 // media.webrtc_tcp_port
	turnAddr       = "127.0.0.1:3478"
	turnTLSAddr    = "127.0.0.1:5349"
	turnRelayFirst = 30000 // turn.relay_ports
	turnRelayLast  = 30099
	turnUser       = "webrtc"
	turnPassword   = "relay-pass"
	natpathTalkMs  = 3000
	natpathTable   = "imsgate_natpath" // the tests' own nftables table
)

// TestICETCPWhenUDPBlocked: nftables drops every UDP packet to the
// gateway's WebRTC port; JsSIP in Chromium calls the SIPp echo and its
// audio goes over ICE-TCP to media.webrtc_tcp_port instead: getStats()
// counts packets both ways over a tcp pair, tshark sees RTP at SIPp and
// nothing from the UDP port, and the gateway logs transport tcp.
func TestICETCPWhenUDPBlocked(t *testing.T) {
	udpOnly := fmt.Sprintf("  webrtc_port: %d\n", webrtcPort)
	cfg := gatewayConfig("udp")
	if !strings.Contains(cfg, udpOnly) {
		t.Fatalf("gatewayConfig has no %q to extend", udpOnly)
	}
	e := newEnvWithGateway(t, strings.Replace(cfg, udpOnly, udpOnly+fmt.Sprintf("  webrtc_tcp_port: %d\n", webrtcTCPPort), 1))
	if err := waitBound("tcp", fmt.Sprintf("127.0.0.1:%d", webrtcTCPPort), startTimeout); err != nil {
		t.Fatalf("imsgate webrtc_tcp_port: %v\n%s", err, e.gateway.log())
	}
	dropped := dropUDPTo(t, webrtcPort)
	wire := startCaptureOf(t, "webrtc", fmt.Sprintf("udp port %d or tcp port %d", webrtcPort, webrtcTCPPort))

	opts := e.browserOptions("jssip", "jssip.html", "call-out-talk", "alice", "sip:echo@imsgate.test")
	opts.TalkMs = natpathTalkMs
	r := startBrowser(t, opts).waitResult(t, browserBudget)
	e.requireOK(t, r, "registered", "confirmed", "ended")
	e.requireBrowserAudio(t, r)
	e.requireTalked(t, r)
	pair := e.requirePair(t, r)
	if pair.Local.Protocol != "tcp" || pair.Remote.Protocol != "tcp" || pair.Remote.Port != webrtcTCPPort {
		e.failf(t, r, "selected pair %s; want tcp to the gateway's port %d", pair, webrtcTCPPort)
	}

	n := dropped()
	stopWire(t, wire)
	udpTo, udpFrom := wire.count(t, fmt.Sprintf("udp.dstport == %d", webrtcPort)), wire.count(t, fmt.Sprintf("udp.srcport == %d", webrtcPort))
	tcpTo := wire.count(t, fmt.Sprintf("tcp.dstport == %d && tcp.len > 0", webrtcTCPPort))
	tcpFrom := wire.count(t, fmt.Sprintf("tcp.srcport == %d && tcp.len > 0", webrtcTCPPort))
	t.Logf("nftables dropped %d UDP packets to port %d; tshark: UDP %d to it, %d from it; TCP segments with data %d to port %d, %d from it",
		n, webrtcPort, udpTo, udpFrom, tcpTo, webrtcTCPPort, tcpFrom)
	if n == 0 {
		e.failf(t, r, "the browser sent no UDP to port %d: nothing was blocked", webrtcPort)
	}
	if udpFrom != 0 {
		e.failf(t, r, "the gateway sent %d UDP packets from port %d while the browser's were dropped", udpFrom, webrtcPort)
	}
	if tcpTo < 100 || tcpFrom < 100 {
		e.failf(t, r, "ICE-TCP carried %d segments to the gateway and %d back; want audio's worth", tcpTo, tcpFrom)
	}
	e.requireWebRTCPath(t, r, "tcp", nil)
	e.requireSIPpRTP(t, r, echoMediaPort)
}

// TestTURNRelay: JsSIP in Chromium with iceTransportPolicy 'relay' and one
// TURN URL of the gateway's server, with long-term credentials from
// turn.users, calls the SIPp echo: its audio goes through a relayed
// allocation (TURN over UDP, TCP or TLS) to the gateway's WebRTC port.
// Chromium takes the TURN server's test certificate by its SPKI hash.
func TestTURNRelay(t *testing.T) {
	cases := []struct {
		name, url     string
		relayProtocol string // getStats: the browser's leg to its TURN server
		turnTransport string // the TURN server's log
		wire          string // tshark: the browser's leg
	}{
		{"udp", "turn:" + turnAddr + "?transport=udp", "udp", "udp", "udp.port == 3478"},
		{"tcp", "turn:" + turnAddr + "?transport=tcp", "tcp", "tcp", "tcp.port == 3478 && tcp.len > 0"},
		{"tls", "turns:" + turnTLSAddr + "?transport=tcp", "tls", "tls", "tcp.port == 5349 && tcp.len > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile, spki := writeTestCert(t, artifactDir(t))
			e := newEnvWithGateway(t, gatewayConfig("udp")+turnConfig(certFile, keyFile, ""))
			wire := startTURNCapture(t)

			opts := e.browserOptions("jssip", "jssip.html", "call-out-talk", "alice", "sip:echo@imsgate.test")
			opts.TalkMs = natpathTalkMs
			opts.ICEServers = []iceServer{{URLs: []string{tc.url}, Username: turnUser, Credential: turnPassword}}
			opts.ICETransportPolicy = "relay"
			opts.ChromiumArgs = []string{"--ignore-certificate-errors-spki-list=" + spki}
			r := startBrowser(t, opts).waitResult(t, browserBudget)
			e.requireOK(t, r, "registered", "confirmed", "ended")
			e.requireBrowserAudio(t, r)
			e.requireTalked(t, r)
			pair := e.requirePair(t, r)
			if pair.Local.CandidateType != "relay" || pair.Local.RelayProtocol != tc.relayProtocol {
				e.failf(t, r, "selected pair %s; want a relay candidate relayed over %s", pair, tc.relayProtocol)
			}
			if pair.Remote.Protocol != "udp" || pair.Remote.Port != webrtcPort {
				e.failf(t, r, "selected pair %s; want the gateway's UDP port %d as remote", pair, webrtcPort)
			}
			e.requireTURNAllocation(t, r, tc.turnTransport, regexp.MustCompile(`^`+turnUser+`$`))
			e.requireRelayedWire(t, r, wire, tc.wire)
			if tc.name == "tls" {
				// The leg to 5349 is TLS: a ClientHello, and no STUN in clear.
				hellos := wire.count(t, "tls.handshake.type == 1", "-d", "tcp.port==5349,tls")
				clear := wire.count(t, "tcp.port == 5349 && stun")
				t.Logf("tshark on port 5349: %d TLS ClientHellos, %d STUN messages in clear", hellos, clear)
				if hellos == 0 || clear != 0 {
					e.failf(t, r, "the browser's leg to %s is not TLS", turnTLSAddr)
				}
			}
			e.requireWebRTCPath(t, r, "udp", inRelayRange)
			e.requireSIPpRTP(t, r, echoMediaPort)
		})
	}
}

// TestTURNCredentialsFromGateway: token mode with turn.secret. The demo
// web phone, opened with ?token= and ?relay=1, fetches /ice-servers with
// its Bearer token before the call, gets the gateway's TURN URLs with REST
// credentials of the token's subject ("<expiry>:user-alice"), and calls
// the SIPp echo with media through TURN only.
func TestTURNCredentialsFromGateway(t *testing.T) {
	ws := "ws:\n  listen: " + gatewayWSAddr + "\n"
	cfg := gatewayConfig("udp")
	if !strings.Contains(cfg, ws) {
		t.Fatalf("gatewayConfig has no %q to extend", ws)
	}
	turn := fmt.Sprintf(`turn:
  listen: %s
  secret: interop-turn-rest-secret
  credential_ttl: 10m
  allowed_peers: [127.0.0.0/8]
  relay_ports: "%d-%d"
`, turnAddr, turnRelayFirst, turnRelayLast)
	e := newEnvWithGateway(t, strings.Replace(cfg, ws, ws+"  web_phone: true\n", 1)+tokenConfig(t)+turn)
	wire := startTURNCapture(t)

	tok := signToken(t, tokenSecret, newClaims("user-alice", 5*time.Minute))
	q := url.Values{"uri": {"sip:alice@imsgate.test"}, "target": {"sip:echo@imsgate.test"}, "token": {tok}, "relay": {"1"}}
	r := startBrowser(t, browserOptions{
		Lib:          "webphone",
		PageURL:      "http://" + gatewayWSAddr + "/?" + q.Encode(),
		Target:       "sip:echo@imsgate.test",
		TalkMs:       natpathTalkMs,
		ArtifactsDir: artifactDir(t),
	}).waitResult(t, browserBudget)
	e.requireOK(t, r, "registered", "confirmed", "ended")
	var servers string
	relayOnly := false
	for _, line := range r.Log {
		if i := strings.Index(line, "ICE servers: "); i >= 0 {
			servers = line[i:]
		}
		relayOnly = relayOnly || strings.HasSuffix(line, "media through TURN only")
	}
	t.Logf("web phone: %s; relay only: %v", servers, relayOnly)
	// The token lives 5 minutes, less than turn.credential_ttl: the
	// credentials end with it.
	if !strings.Contains(servers, "turn:"+turnAddr) || !regexp.MustCompile(`TURN credentials for (2[4-9]\d|300) s`).MatchString(servers) || !relayOnly {
		e.failf(t, r, "the web phone got no TURN credentials from /ice-servers or did not go relay-only:\n%s", strings.Join(r.Log, "\n"))
	}
	e.requireBrowserAudio(t, r)
	pair := e.requirePair(t, r)
	if pair.Local.CandidateType != "relay" || pair.Remote.Port != webrtcPort {
		e.failf(t, r, "selected pair %s; want a relay candidate to the gateway's UDP port %d", pair, webrtcPort)
	}
	// The page asked for credentials with its token; the TURN server, which
	// has no turn.users, took them (it counts a REST credential,
	// "<expiry>:<subject>", under its subject).
	issued := 0
	for _, f := range gatewayLogged(e.gateway, "turn credentials issued") {
		if f["subject"] == "user-alice" {
			issued++
		}
	}
	if issued == 0 {
		e.failf(t, r, "the gateway issued no TURN credentials for user-alice")
	}
	e.requireTURNAllocation(t, r, pair.Local.RelayProtocol, regexp.MustCompile(`^(\d+:)?user-alice$`))
	requireRESTCredentials(t, e, r, tok)
	e.requireRelayedWire(t, r, wire, "udp.port == 3478 || (tcp.port == 3478 && tcp.len > 0)")
	e.requireWebRTCPath(t, r, "udp", inRelayRange)
	e.requireSIPpRTP(t, r, echoMediaPort)
}

// turnConfig is the gateway's turn section: UDP and TCP on turnAddr, TLS
// on turnTLSAddr with the test certificate, user turnUser, loopback peers
// allowed, relays from the test's range; extra adds keys (two spaces in).
func turnConfig(certFile, keyFile, extra string) string {
	return fmt.Sprintf(`turn:
  listen: %s
  tls_listen: %s
  tls_cert: %s
  tls_key: %s
  users:
    - {username: %s, password: %s}
  allowed_peers: [127.0.0.0/8]
  relay_ports: "%d-%d"
`, turnAddr, turnTLSAddr, certFile, keyFile, turnUser, turnPassword, turnRelayFirst, turnRelayLast) + extra
}

// requireRESTCredentials: /ice-servers answers tok with the TURN URLs and
// REST credentials of its subject (username "<expiry>:user-alice", expiry
// turn.credential_ttl ahead), and a request without a token with 401 and a
// Bearer challenge.
func requireRESTCredentials(t *testing.T, e *env, r browserResult, tok string) {
	t.Helper()
	get := func(bearer string) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, "http://"+gatewayWSAddr+"/ice-servers", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			e.failf(t, r, "GET /ice-servers: %v", err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	res, body := get("")
	t.Logf("GET /ice-servers without a token: %d, WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		e.failf(t, r, "/ice-servers without a token answered %d %q, want 401 with a Bearer challenge", res.StatusCode, body)
	}
	res, body = get(tok)
	var ans struct {
		ICEServers []iceServer `json:"iceServers"`
		TTL        int         `json:"ttl"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &ans) != nil || len(ans.ICEServers) != 1 {
		e.failf(t, r, "/ice-servers with the token answered %d %s", res.StatusCode, body)
	}
	s := ans.ICEServers[0]
	t.Logf("GET /ice-servers with the token: %v, username %q, ttl %d s", s.URLs, s.Username, ans.TTL)
	expiry, subject, _ := strings.Cut(s.Username, ":")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	// The token (5 minutes) ends before turn.credential_ttl (10 minutes):
	// the credentials end with the token.
	if left := time.Until(time.Unix(exp, 0)); err != nil || subject != "user-alice" || left <= 4*time.Minute || left > 5*time.Minute+time.Second {
		e.failf(t, r, "REST username %q: want <the token's expiry>:user-alice", s.Username)
	}
	if s.Credential == "" || ans.TTL <= 240 || ans.TTL > 300 {
		e.failf(t, r, "REST credential %q, ttl %d; want a password and the token's remaining time (at most 300 s)", s.Credential, ans.TTL)
	}
}

// requireTalked: getStats() counters grew both ways over the talk
// (call-out-talk's phases), at least half of 50 packets a second.
func (e *env) requireTalked(t *testing.T, r browserResult) {
	t.Helper()
	from, to := r.Phases["flowing"], r.Phases["talked"]
	in, out := to.Inbound-from.Inbound, to.Outbound-from.Outbound
	t.Logf("getStats over %d ms of talk: %d packets in, %d out", natpathTalkMs, in, out)
	if want := natpathTalkMs / 20 / 2; in < want || out < want {
		e.failf(t, r, "getStats grew by %d packets in and %d out over the talk; want %d each", in, out, want)
	}
}

// requirePair returns the call's selected candidate pair.
func (e *env) requirePair(t *testing.T, r browserResult) candidatePair {
	t.Helper()
	if r.Stats.Pair == nil {
		e.failf(t, r, "getStats showed no selected candidate pair")
	}
	t.Logf("selected candidate pair: %s", *r.Stats.Pair)
	return *r.Stats.Pair
}

// requireTURNAllocation: the gateway's TURN server logged an allocation
// over transport for a username that matches user; it returns the username.
func (e *env) requireTURNAllocation(t *testing.T, r browserResult, transport string, user *regexp.Regexp) string {
	t.Helper()
	var seen []string
	for _, f := range gatewayLogged(e.gateway, "turn allocation") {
		seen = append(seen, fmt.Sprintf("%v over %v for %v relayed at %v", f["remote_addr"], f["transport"], f["user"], f["relay_addr"]))
		if u, _ := f["user"].(string); f["transport"] == transport && user.MatchString(u) {
			t.Logf("turn server: allocation from %v over %v for %q at %v", f["remote_addr"], transport, u, f["relay_addr"])
			return u
		}
	}
	e.failf(t, r, "the TURN server logged no allocation over %s for %s; it logged: %v", transport, user, seen)
	return ""
}

// requireWebRTCPath: the gateway's log says the browser's media came over
// transport (udp, tcp), from an address remote accepts (nil: any), and
// counts packets each way when the call's media session closed.
func (e *env) requireWebRTCPath(t *testing.T, r browserResult, transport string, remote func(string) bool) {
	t.Helper()
	connected := gatewayLogged(e.gateway, "webrtc connected")
	if len(connected) != 1 {
		e.failf(t, r, "the gateway logged %d 'webrtc connected', want 1", len(connected))
	}
	c := connected[0]
	addr, _ := c["remote_addr"].(string)
	// The call Kamailio challenged (407) had a media session of its own.
	call, _ := c["call_id"].(string)
	if err := e.gateway.waitLog(`media session closed\t\{"call_id": "`+regexp.QuoteMeta(call)+`"`, 10*time.Second); err != nil {
		e.failf(t, r, "%v", err)
	}
	var closed map[string]any
	for _, f := range gatewayLogged(e.gateway, "media session closed") {
		if f["call_id"] == call {
			closed = f
		}
	}
	t.Logf("gateway: webrtc connected over %v from %v in %v; media session closed with %v packets web to core, %v core to web",
		c["transport"], addr, c["dur"], closed["web_to_core_packets"], closed["core_to_web_packets"])
	if c["transport"] != transport {
		e.failf(t, r, "the gateway's WebRTC transport is %v, want %s", c["transport"], transport)
	}
	if remote != nil && !remote(addr) {
		e.failf(t, r, "the gateway's WebRTC peer is %s, not a TURN relay address", addr)
	}
	if w, ok := closed["web_to_core_packets"].(float64); !ok || w < 50 {
		e.failf(t, r, "the gateway relayed %v packets from the browser to the core", closed["web_to_core_packets"])
	}
}

// inRelayRange tells whether host:port is one of turn.relay_ports on
// loopback.
func inRelayRange(addr string) bool {
	host, port, ok := strings.Cut(addr, ":")
	p, err := strconv.Atoi(port)
	return ok && err == nil && host == "127.0.0.1" && p >= turnRelayFirst && p <= turnRelayLast
}

// startTURNCapture records the browser's leg to the TURN server (UDP and
// TCP 3478, TLS 5349) and the relay's to the gateway's WebRTC port.
func startTURNCapture(t *testing.T) *capture {
	t.Helper()
	return startCaptureOf(t, "turn", fmt.Sprintf("port 3478 or port 5349 or udp port %d", webrtcPort))
}

// requireRelayedWire: tshark saw the browser's leg to the TURN server
// (browserLeg, a display filter) and packets between the relay ports and
// the gateway's WebRTC port both ways.
func (e *env) requireRelayedWire(t *testing.T, r browserResult, c *capture, browserLeg string) {
	t.Helper()
	stopWire(t, c)
	relay := fmt.Sprintf("udp.srcport >= %d && udp.srcport <= %d", turnRelayFirst, turnRelayLast)
	toGateway := c.count(t, fmt.Sprintf("%s && udp.dstport == %d", relay, webrtcPort))
	fromGateway := c.count(t, fmt.Sprintf("udp.srcport == %d && udp.dstport >= %d && udp.dstport <= %d", webrtcPort, turnRelayFirst, turnRelayLast))
	direct := c.count(t, fmt.Sprintf("udp.dstport == %d && !(%s)", webrtcPort, relay))
	leg := c.count(t, browserLeg)
	t.Logf("tshark: %d packets on the browser's leg (%s); relay to gateway %d, gateway to relay %d; other UDP to port %d: %d",
		leg, browserLeg, toGateway, fromGateway, webrtcPort, direct)
	if leg < 100 || toGateway < 100 || fromGateway < 100 {
		e.failf(t, r, "too few packets through the relay")
	}
	if direct != 0 {
		e.failf(t, r, "%d UDP packets reached port %d from outside the relay ports", direct, webrtcPort)
	}
}

// dropUDPTo makes nftables drop every UDP packet to port at the input hook
// (the sender sees nothing, as behind a firewall), in a table of the
// test's own that cleanup deletes; dropped reads the rule's counter.
func dropUDPTo(t *testing.T, port int) (dropped func() int) {
	t.Helper()
	return nftDrop(t, natpathTable, fmt.Sprintf("udp dport %d counter drop", port))
}

// nftDrop loads a table of the test's own whose input chain holds rules
// (counters on each drop), deletes it at cleanup, and returns the packets
// its counters dropped so far.
func nftDrop(t *testing.T, table string, rules ...string) (dropped func() int) {
	t.Helper()
	ruleset := fmt.Sprintf("table inet %s {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\t%s\n\t}\n}\n",
		table, strings.Join(rules, "\n\t\t"))
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
			t.Errorf("nft delete table: %v\n%s", err, out)
		}
	})
	counter := regexp.MustCompile(`counter packets (\d+)`)
	return func() int {
		out, err := exec.Command("nft", "list", "table", "inet", table).Output()
		if err != nil {
			t.Fatalf("nft list table: %v", err)
		}
		n := 0
		for _, m := range counter.FindAllSubmatch(out, -1) {
			k, _ := strconv.Atoi(string(m[1]))
			n += k
		}
		return n
	}
}

// gatewayLogged returns the fields of each line of p's console log
// (time, level, logger, caller, message, JSON fields; tab-separated) whose
// message is msg.
func gatewayLogged(p *proc, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.log(), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 6 || f[len(f)-2] != msg {
			continue
		}
		var v map[string]any
		if json.Unmarshal([]byte(f[len(f)-1]), &v) == nil {
			out = append(out, v)
		}
	}
	return out
}
