//go:build interop

package interop

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// The gateway as the edge of an IMS core's trust domain (RFC 3325, 3327,
// 3608; TS 24.229 5.2): what it puts on the requests it sends the core,
// what it keeps from the browser's, and requests too big for UDP. Kamailio
// (-A WITH_EDGE_LOG) logs, per request, the headers an IMS edge adds and
// its size and transport; with -A WITH_SERVICE_ROUTE it answers each
// REGISTER with a Service-Route naming itself.

const (
	// headerRelayAddr is where a headerRelay takes the webua's WebSocket.
	headerRelayAddr = "127.0.0.1:8081"
	// accessNetworkInfo and visitedNetworkID are the gateway's configured
	// upstream.access_network_info and upstream.visited_network_id.
	accessNetworkInfo = "IEEE-802.11;i-wlan-node-id=ffffffffffff"
	visitedNetworkID  = "imsgate.test"
	// serviceRoute is the Service-Route Kamailio gives a registration.
	serviceRoute = "<sip:orig@127.0.0.1:5060;lr>"
	// largeInvite is how many bytes the INVITE the gateway sends the core
	// must weigh in TestLargeInviteOverTCP (RFC 3261 18.1.1: over 1300
	// bytes, TCP).
	largeInvite = 3000
)

// TestIMSEdgeHeaders: with upstream.ims, the gateway's REGISTER to
// Kamailio carries a Path naming the gateway's SIP side with the binding's
// token, Supported: path, the configured P-Access-Network-Info and
// P-Visited-Network-ID; Kamailio's 200 gives a Service-Route. The browser
// (the webua, its frames passing a headerRelay that adds a
// P-Asserted-Identity of boss and a P-Charging-Vector to its INVITEs) calls
// the echo: the INVITE reaches Kamailio preloaded with the Service-Route,
// and SIPp behind it checks it carries P-Asserted-Identity
// <sip:alice@imsgate.test> and the P-Access-Network-Info and neither of the
// browser's headers (uas_echo_edge.xml; SIPp fails the call otherwise).
// The echo must come back to the browser and tshark see RTP at SIPp.
func TestIMSEdgeHeaders(t *testing.T) {
	kam := startKamailioWith(t, "-A", "WITH_EDGE_LOG", "-A", "WITH_SERVICE_ROUTE")
	uas := startSIPpUAS(t, "sipp-echo", "uas_echo_edge.xml", echoUASPort, echoMediaPort, true, "-m", "1")
	media := startCapture(t)
	gw := startGateway(t, withUpstream(t, gatewayConfig("udp"),
		"  ims: true\n",
		"  access_network_info: \""+accessNetworkInfo+"\"\n",
		"  visited_network_id: \""+visitedNetworkID+"\"\n"), repoRoot())
	relay := startHeaderRelay(t, "INVITE", func([]byte) string {
		return "P-Asserted-Identity: <sip:boss@imsgate.test>\r\n" +
			"P-Charging-Vector: icid-value=1234bc9876e;icid-generated-at=192.0.6.8;orig-ioi=home1.net\r\n"
	})
	ua := dialWebUAWith(t, "webua", webua.Config{URL: relay.url(), AoR: "sip:alice@imsgate.test", Password: "secret"})
	registerWebUA(t, gw, ua)

	regs := edgeLines(kam.log(), "REGISTER")
	if len(regs) == 0 {
		failGateway(t, gw, "Kamailio logged no REGISTER\n--- kamailio log (tail):\n%s", tail(kam.log(), 20))
	}
	path := regexp.MustCompile(`^<sip:[^@>]+@127\.0\.0\.1:5070;transport=udp;lr>$`)
	for _, r := range regs {
		t.Logf("Kamailio got REGISTER over %s: Path %s, Supported %s, P-Access-Network-Info %s, P-Visited-Network-ID %s",
			r.proto, r.path, r.supported, r.pani, r.pvni)
		if !path.MatchString(r.path) || !hasToken(r.supported, "path") || r.pani != accessNetworkInfo || r.pvni != visitedNetworkID {
			failGateway(t, gw, "REGISTER at Kamailio: Path %q (want %s), Supported %q (want path), P-Access-Network-Info %q (want %q), P-Visited-Network-ID %q (want %q)",
				r.path, path, r.supported, r.pani, accessNetworkInfo, r.pvni, visitedNetworkID)
		}
	}

	echoCallWithMedia(t, gw, ua, uas, media)

	sent := relay.edited()
	if len(sent) < 2 {
		failGateway(t, gw, "the relay added headers to %d INVITEs, want the challenged one and its retry", len(sent))
	}
	for _, f := range sent {
		if !strings.Contains(string(f), "\r\nP-Asserted-Identity: <sip:boss@imsgate.test>\r\nP-Charging-Vector: ") {
			failGateway(t, gw, "the browser's INVITE lacks its own P-Asserted-Identity and P-Charging-Vector:\n%s", f)
		}
	}
	t.Logf("the browser sent %d INVITEs with P-Asserted-Identity <sip:boss@imsgate.test> and a P-Charging-Vector", len(sent))
	invs := edgeLines(kam.log(), "INVITE")
	if len(invs) < 2 {
		failGateway(t, gw, "Kamailio logged %d INVITEs, want the challenged one and its retry\n--- kamailio log (tail):\n%s", len(invs), tail(kam.log(), 30))
	}
	for _, r := range invs {
		t.Logf("Kamailio got INVITE (%d bytes, over %s): Route %s, P-Asserted-Identity %s, P-Access-Network-Info %s, P-Charging-Vector %s",
			r.size, r.proto, r.route, r.pai, r.pani, r.pcv)
		if r.route != serviceRoute {
			failGateway(t, gw, "INVITE at Kamailio has Route %q, want the Service-Route %s", r.route, serviceRoute)
		}
		if r.pai != "<sip:alice@imsgate.test>" || r.pcv != kamailioNull || r.pani != accessNetworkInfo {
			failGateway(t, gw, "INVITE at Kamailio: P-Asserted-Identity %q, P-Charging-Vector %q, P-Access-Network-Info %q; want only alice's, none, %q",
				r.pai, r.pcv, r.pani, accessNetworkInfo)
		}
	}
	// What SIPp checked, as it got it.
	for _, m := range readSIPpTrace(t, "sipp-echo-messages.log").filter(sippReceived, "INVITE ", "INVITE") {
		t.Logf("SIPp got INVITE: P-Asserted-Identity %q, P-Access-Network-Info %q, P-Charging-Vector %q, Route %q",
			m.header("P-Asserted-Identity"), m.header("P-Access-Network-Info"), m.header("P-Charging-Vector"), m.header("Route"))
	}
}

// TestLargeInviteOverTCP: with a UDP upstream, an INVITE the gateway makes
// larger than 1300 bytes (the browser's Subject padded so the gateway's
// INVITE weighs over 3,000) leaves over TCP to the same host and port
// (RFC 3261 18.1.1), while the REGISTERs before it went over UDP. The
// call to the echo must carry media both ways.
func TestLargeInviteOverTCP(t *testing.T) {
	kam := startKamailioWith(t, "-A", "WITH_EDGE_LOG")
	uas := startSIPpUAS(t, "sipp-echo", "uas_echo.xml", echoUASPort, echoMediaPort, true, "-m", "1")
	media := startCapture(t)
	gw := startGateway(t, gatewayConfig("udp"), repoRoot())
	// The gateway's INVITE without its Subject weighs about 1,000 bytes.
	subject := "Subject: " + strings.Repeat("long subject ", (largeInvite-800)/len("long subject ")) + "\r\n"
	relay := startHeaderRelay(t, "INVITE", func([]byte) string { return subject })
	ua := dialWebUAWith(t, "webua", webua.Config{URL: relay.url(), AoR: "sip:alice@imsgate.test", Password: "secret"})
	registerWebUA(t, gw, ua)

	echoCallWithMedia(t, gw, ua, uas, media)

	for _, f := range relay.edited() {
		t.Logf("the browser's INVITE on the WebSocket: %d bytes", len(f))
	}
	regs, invs := edgeLines(kam.log(), "REGISTER"), edgeLines(kam.log(), "INVITE")
	for _, r := range regs {
		t.Logf("Kamailio got REGISTER over %s, %d bytes", r.proto, r.size)
		if r.proto != "udp" {
			failGateway(t, gw, "a %d-byte REGISTER came over %s, want udp", r.size, r.proto)
		}
	}
	if len(regs) == 0 || len(invs) < 2 {
		failGateway(t, gw, "Kamailio logged %d REGISTERs and %d INVITEs, want some and two (challenged, retried)\n--- kamailio log (tail):\n%s",
			len(regs), len(invs), tail(kam.log(), 30))
	}
	for _, r := range invs {
		t.Logf("Kamailio got INVITE over %s, %d bytes", r.proto, r.size)
		if r.proto != "tcp" || r.size < largeInvite {
			failGateway(t, gw, "a %d-byte INVITE came over %s, want tcp and at least %d bytes", r.size, r.proto, largeInvite)
		}
	}
}

// withUpstream adds lines (each "  key: value\n") to the upstream section
// of a gatewayConfig.
func withUpstream(t *testing.T, cfg string, lines ...string) string {
	t.Helper()
	anchor := "  domain: imsgate.test\n"
	if !strings.Contains(cfg, "upstream:\n") || !strings.Contains(cfg, anchor) {
		t.Fatalf("gatewayConfig has no upstream %q to extend:\n%s", anchor, cfg)
	}
	return strings.Replace(cfg, anchor, anchor+strings.Join(lines, ""), 1)
}

// placeCallAuthorized is placeCall answering the core's challenge: a 401
// or 407 to the INVITE brings a second INVITE with credentials, as a
// browser sends.
func placeCallAuthorized(t *testing.T, gw *proc, ua *webua.UA, target string) *webua.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	var opts []webua.InviteOption
	for range 2 {
		call, res := inviteResult(ctx, t, gw, ua, target, opts...)
		if res.IsSuccess() {
			return call
		}
		if len(opts) > 0 || (res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusProxyAuthRequired) {
			failGateway(t, gw, "invite %s: %d %s", target, res.StatusCode, res.Reason)
		}
		opts = append(opts, webua.WithChallenge(res))
	}
	return nil
}

// echoCallWithMedia calls the SIPp echo (answering Kamailio's challenge),
// sees audio echoed at the browser and counted at SIPp, and hangs up.
func echoCallWithMedia(t *testing.T, gw *proc, ua *webua.UA, uas *proc, media *capture) {
	t.Helper()
	call := placeCallAuthorized(t, gw, ua, "sip:echo@imsgate.test")
	waitMedia(t, gw, call, "echoed", func(s webua.MediaStats) uint64 { return s.Echoed }, minEchoed)
	hangUp(t, gw, call)
	requireSIPpDone(t, gw, uas, 10*time.Second)
	logMedia(t, call)
	requireSIPpMedia(t, media, echoMediaPort)
}

// kamailioNull is how xlog prints a header the request does not have.
const kamailioNull = "<null>"

// edgeLine is one request as Kamailio's WITH_EDGE_LOG line tells it.
type edgeLine struct {
	method, proto                                string
	size                                         int
	path, supported, pani, pvni, pai, pcv, route string
}

var edgeLineRE = regexp.MustCompile(`edge: (\S+) over (\S+), (\d+) bytes; Path <(.*?)> Supported <(.*?)> ` +
	`P-Access-Network-Info <(.*?)> P-Visited-Network-ID <(.*?)> P-Asserted-Identity <(.*?)> ` +
	`P-Charging-Vector <(.*?)> Route <(.*?)>$`)

// edgeLines reads the WITH_EDGE_LOG lines of Kamailio's log for method.
func edgeLines(log, method string) []edgeLine {
	var out []edgeLine
	for _, l := range strings.Split(log, "\n") {
		m := edgeLineRE.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if m == nil || m[1] != method {
			continue
		}
		size, _ := strconv.Atoi(m[3])
		out = append(out, edgeLine{method: m[1], proto: m[2], size: size, path: m[4], supported: m[5],
			pani: m[6], pvni: m[7], pai: m[8], pcv: m[9], route: m[10]})
	}
	return out
}

// hasToken reports whether a comma-separated header value lists token.
func hasToken(list, token string) bool {
	for _, v := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(v), token) {
			return true
		}
	}
	return false
}

// headerRelay is a WebSocket hop between the Go browser and the gateway
// (headerRelayAddr to gatewayWSAddr, subprotocol sip): the browser's
// requests of one method get header lines written in after their request
// line, as a page adds its own headers (JsSIP's extraHeaders), which the
// webua has no option for. Everything else passes unchanged both ways,
// close frames too.
type headerRelay struct {
	ln     net.Listener
	srv    *http.Server
	method string
	extra  func(frame []byte) string // header lines to add, each ending CRLF

	wg      sync.WaitGroup // the server and every connection's pipes
	mu      sync.Mutex
	closing bool
	conns   map[*websocket.Conn]struct{}
	sent    [][]byte // the edited frames, as they left for the gateway
}

// startHeaderRelay serves headerRelayAddr until the test ends.
func startHeaderRelay(t *testing.T, method string, extra func(frame []byte) string) *headerRelay {
	t.Helper()
	ln, err := net.Listen("tcp", headerRelayAddr)
	if err != nil {
		t.Fatalf("header relay: %v", err)
	}
	r := &headerRelay{ln: ln, method: method, extra: extra, conns: map[*websocket.Conn]struct{}{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serveWS), ReadHeaderTimeout: 5 * time.Second}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Logf("header relay: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = r.srv.Close()
		r.mu.Lock()
		r.closing = true
		for c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *headerRelay) url() string { return "ws://" + headerRelayAddr + "/" }

// edited returns the frames the relay changed, in order.
func (r *headerRelay) edited() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.sent...)
}

func (r *headerRelay) serveWS(w http.ResponseWriter, req *http.Request) {
	up := websocket.Upgrader{Subprotocols: []string{"sip"}, CheckOrigin: func(*http.Request) bool { return true }}
	dialer := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second}
	gw, res, err := dialer.DialContext(req.Context(), "ws://"+gatewayWSAddr+"/", nil)
	if res != nil && res.Body != nil {
		_ = res.Body.Close()
	}
	if err != nil {
		http.Error(w, "gateway: "+err.Error(), http.StatusBadGateway)
		return
	}
	browser, err := up.Upgrade(w, req, nil)
	if err != nil {
		_ = gw.Close()
		return
	}
	if !r.track(browser, gw) {
		return
	}
	go func() {
		defer r.wg.Done()
		pipeWS(gw, browser, nil)
	}()
	defer r.wg.Done()
	pipeWS(browser, gw, r.edit)
}

// track registers a connection pair for the cleanup to close and counts
// its two pipes; once the relay is shutting down it closes both instead.
func (r *headerRelay) track(browser, gw *websocket.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		_ = browser.Close()
		_ = gw.Close()
		return false
	}
	r.conns[browser], r.conns[gw] = struct{}{}, struct{}{}
	r.wg.Add(2)
	return true
}

// edit adds the extra header lines to a request of the relay's method.
func (r *headerRelay) edit(frame []byte) []byte {
	if !strings.HasPrefix(string(frame), r.method+" ") {
		return frame
	}
	i := strings.Index(string(frame), "\r\n")
	if i < 0 {
		return frame
	}
	out := make([]byte, 0, len(frame)+256)
	out = append(out, frame[:i+2]...)
	out = append(out, r.extra(frame)...)
	out = append(out, frame[i+2:]...)
	r.mu.Lock()
	r.sent = append(r.sent, out)
	r.mu.Unlock()
	return out
}

// pipeWS copies messages from src to dst (through edit, when set) until
// src ends; then it passes src's close on and closes both.
func pipeWS(src, dst *websocket.Conn, edit func([]byte) []byte) {
	defer src.Close()
	defer dst.Close()
	for {
		kind, data, err := src.ReadMessage()
		if err != nil {
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseNoStatusReceived {
				msg = websocket.FormatCloseMessage(ce.Code, ce.Text)
			}
			_ = dst.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return
		}
		if edit != nil && kind == websocket.TextMessage {
			data = edit(data)
		}
		if err := dst.WriteMessage(kind, data); err != nil {
			return
		}
	}
}
