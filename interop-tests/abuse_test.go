//go:build interop

package interop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Abuse limits (limits.*, on by default). From 127.0.0.1 a flooder makes
// WebSocket upgrades, REGISTERs and INVITEs far past the limits, holds
// slowloris upgrades and sends an oversized one, while the Go browser
// (webua) from 127.0.0.2 keeps registering with Kamailio and calling the
// SIPp echo, with media. The gateway's CPU and memory over the flood are
// logged; docs/ABUSE.md has them.

var (
	flooderIP = net.IPv4(127, 0, 0, 1)
	goodIP    = net.IPv4(127, 0, 0, 2)
)

const (
	floodFor            = 12 * time.Second
	floodUpgradesPerSec = 50  // the upgrade flood's attempts per second
	floodRequestsPerSec = 200 // each request flooder's SIP requests per second
	slowlorisWorkers    = 20  // slowloris upgrades open at any time
	// What the test config sets; the other limits keep their defaults.
	abuseConnsPerIP     = 100
	abuseUpgradeTimeout = 2 * time.Second
	// Defaults the assertions hold the gateway to (configs/limits.go).
	defaultUpgradesPerIP   = 20 // per second, burst twice as many
	defaultRequestsPerConn = 20 // likewise
	defaultMaxUpgradeBytes = 8 << 10
	// deniedNumber matches the test config's deny_destinations "+1900*".
	deniedNumber = "+19005550100"
)

// abuseConfig is the gateway's config for these tests (log level info: a
// flood logged at debug would measure the logger), with extra appended.
func abuseConfig(extra string) string {
	cfg := strings.Replace(gatewayConfig("udp"), "  level: debug\n", "  level: info\n", 1)
	return cfg + fmt.Sprintf(`limits:
  conns_per_ip: %d
  upgrade_timeout: %s
  deny_destinations: ["+1900*"]
`, abuseConnsPerIP, abuseUpgradeTimeout) + extra
}

// plainGatewayBin is the gateway built without -race, once per test
// binary, beside the race build: its CPU and memory are the figures.
var plainGatewayBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(gatewayBin), "imsgate-plain")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/imsgate")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build gateway without -race: %v\n%s", err, out)
	}
	return bin, nil
})

func TestAbuseLimits(t *testing.T) {
	t.Run("flood", testFlood)
	t.Run("deny_destinations", testDenyDestinations)
}

func testFlood(t *testing.T) {
	bin, err := plainGatewayBin()
	if err != nil {
		t.Fatal(err)
	}
	startKamailio(t)
	startSIPpUAS(t, "sipp-echo", "uas_echo.xml", echoUASPort, echoMediaPort, true)
	gw := startGatewayBin(t, bin, abuseConfig(""), repoRoot())
	pid := gw.cmd.Process.Pid
	api := webua.NewAPI()
	goodLog, flooderLog := testLogger(t, "webua-good"), testLogger(t, "webua-flooder")

	// Probes with the flooder's upgrade budget still whole.
	// Over max_upgrade_bytes by a little and by a lot (Go's net/http alone
	// lets 4 KiB past its MaxHeaderBytes). Not fatal: the flood goes on.
	for _, size := range []int{defaultMaxUpgradeBytes + 1024, 2 * defaultMaxUpgradeBytes} {
		status, answer := oversizedUpgrade(t, size)
		t.Logf("upgrade with %d+ bytes of headers: HTTP %d %q", size, status, answer)
		if status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("upgrade with %d+ bytes of headers (max_upgrade_bytes %d) answered %d %q, want 431", size, defaultMaxUpgradeBytes, status, answer)
		}
	}
	baseline := goodRound(context.Background(), api, goodLog, 0)
	if baseline.err != nil {
		failGateway(t, gw, "before the flood: %v", baseline.err)
	}
	time.Sleep(time.Second) // the gateway idles; then its baseline
	before, err := sampleProc(pid)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	tally := newFloodTally()
	var wg sync.WaitGroup
	samples := make(chan []procSample, 1)
	wg.Add(1)
	go func() { defer wg.Done(); samples <- sampleEvery(ctx, pid, 250*time.Millisecond) }()
	// The request flooders connect first; then the upgrade flood takes
	// what is left of 127.0.0.1's connections and upgrades.
	connected := make(chan struct{}, 2)
	for _, kind := range []sip.RequestMethod{sip.REGISTER, sip.INVITE} {
		wg.Add(1)
		go func() { defer wg.Done(); floodRequests(ctx, kind, api, flooderLog, tally, connected) }()
	}
	for range 2 {
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			cancel()
			wg.Wait()
			failGateway(t, gw, "the request flooders could not connect")
		}
	}
	wg.Add(1 + slowlorisWorkers)
	go func() { defer wg.Done(); floodUpgrades(ctx, tally) }()
	for range slowlorisWorkers {
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := slowloris(ctx)
				tally.mu.Lock()
				tally.slow = append(tally.slow, r)
				tally.mu.Unlock()
			}
		}()
	}
	var during []roundResult
	for n := 1; ctx.Err() == nil; n++ {
		during = append(during, goodRound(ctx, api, goodLog, n))
	}
	wg.Wait()
	floodTook := floodFor // every flooder stopped when ctx ended
	series := <-samples
	after := goodRound(context.Background(), api, goodLog, len(during)+1)
	time.Sleep(time.Second)
	settled, err := sampleProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	if gw.exited() {
		failGateway(t, gw, "the gateway exited during the flood: %v", gw.waitErr)
	}

	// The figures, whatever the verdict.
	fig := floodFigures(tally, before, series, settled, floodTook, baseline, during, after)
	t.Log("\n" + fig)
	if err := os.WriteFile(filepath.Join(artifactDir(t), "figures.txt"), []byte(fig), 0o644); err != nil {
		t.Logf("write figures: %v", err)
	}

	// The browser from the other address never noticed.
	for _, r := range append(append([]roundResult{baseline}, during...), after) {
		if r.err != nil {
			failGateway(t, gw, "the browser at 127.0.0.2, round %d: %v", r.n, r.err)
		}
	}
	if len(during) < 2 {
		failGateway(t, gw, "the browser at 127.0.0.2 finished %d rounds during the flood, want 2 or more", len(during))
	}

	tally.mu.Lock()
	defer tally.mu.Unlock()
	secs := floodTook.Seconds()
	// Upgrades from 127.0.0.1: at most the burst and the rate, and never
	// more open than conns_per_ip.
	upgraded := tally.upgrades[http.StatusSwitchingProtocols] + tally.redials[http.StatusSwitchingProtocols]
	if bound := int(2*defaultUpgradesPerIP+defaultUpgradesPerIP*secs) + 5; upgraded > bound {
		failGateway(t, gw, "%d upgrades from 127.0.0.1 accepted in %.1f s, want at most %d (upgrades_per_ip %d/s, burst %d)",
			upgraded, secs, bound, defaultUpgradesPerIP, 2*defaultUpgradesPerIP)
	}
	if tally.upgrades[http.StatusTooManyRequests] == 0 {
		failGateway(t, gw, "no upgrade of the flood was refused 429: %v", tally.upgrades)
	}
	if tally.retry429 != tally.upgrades[http.StatusTooManyRequests] {
		failGateway(t, gw, "%d of the %d 429s carry Retry-After, want all", tally.retry429, tally.upgrades[http.StatusTooManyRequests])
	}
	if tally.maxOpen > abuseConnsPerIP {
		failGateway(t, gw, "%d connections from 127.0.0.1 open at once, want at most conns_per_ip %d", tally.maxOpen, abuseConnsPerIP)
	}
	// Requests on one connection: at most the burst and the rate answered,
	// the rest 503 with Retry-After, and a connection that keeps on closed
	// with 1008.
	for _, kind := range []sip.RequestMethod{sip.REGISTER, sip.INVITE} {
		var refused, withRetry, closed1008 int
		for _, c := range tally.conns {
			if c.kind != kind {
				continue
			}
			refused += c.finals[http.StatusServiceUnavailable]
			withRetry += c.retryAfter
			if c.closeCode == websocket.ClosePolicyViolation {
				closed1008++
			}
			answered := 0
			for code, n := range c.finals {
				if code != http.StatusServiceUnavailable {
					answered += n
				}
			}
			if bound := int(2*defaultRequestsPerConn+defaultRequestsPerConn*c.lifetime.Seconds()) + 5; answered > bound {
				failGateway(t, gw, "a %s flood connection got %d answers other than 503 in %s, want at most %d (requests_per_conn %d/s, burst %d): %v",
					kind, answered, c.lifetime.Round(time.Millisecond), bound, defaultRequestsPerConn, 2*defaultRequestsPerConn, c.finals)
			}
		}
		if refused == 0 {
			failGateway(t, gw, "no %s of the flood was refused 503", kind)
		}
		if withRetry != refused {
			failGateway(t, gw, "%d of the %d 503s to the %s flood carry Retry-After, want all", withRetry, refused, kind)
		}
		if closed1008 == 0 {
			failGateway(t, gw, "no %s flood connection was closed with 1008", kind)
		}
	}
	// Slowloris: every dribbled upgrade cut after upgrade_timeout.
	for _, s := range tally.slow {
		if !s.cut && s.lasted >= floodFor-time.Second {
			failGateway(t, gw, "a slowloris upgrade was still open after %s (upgrade_timeout %s)", s.lasted.Round(time.Millisecond), abuseUpgradeTimeout)
		}
		if s.cut && s.lasted > abuseUpgradeTimeout+1500*time.Millisecond {
			failGateway(t, gw, "a slowloris upgrade was cut after %s, want about upgrade_timeout %s", s.lasted.Round(time.Millisecond), abuseUpgradeTimeout)
		}
	}
}

// testDenyDestinations: a call to a number of limits.deny_destinations
// gets 403 from the gateway, never reaching Kamailio, in passthrough mode,
// in token mode, and on a click-to-call token that names it; a number that
// is not denied is relayed (Kamailio answers it).
func testDenyDestinations(t *testing.T) {
	denied := "sip:" + deniedNumber + "@imsgate.test"
	other := "sip:+15550100@imsgate.test"
	t.Run("passthrough", func(t *testing.T) {
		kam := startKamailio(t)
		gw := startGateway(t, abuseConfig(""), repoRoot())
		ua := dialWebUA(t, "sip:bob@imsgate.test")
		registerWebUA(t, gw, ua)
		requireCallStatus(t, gw, ua, denied, http.StatusForbidden)
		requireNotRelayed(t, gw, kam, deniedNumber)
		// Relayed: Kamailio's own challenge comes back to the browser.
		requireCallStatus(t, gw, ua, other, http.StatusProxyAuthRequired)
	})
	t.Run("token", func(t *testing.T) {
		kam := startKamailio(t)
		gw := startGateway(t, abuseConfig(tokenConfig(t)), repoRoot())
		tok := signToken(t, tokenSecret, newClaims("user-alice", 5*time.Minute))
		ua := dialWebUAWith(t, "webua", webua.Config{URL: tokenURL(tok), AoR: "sip:alice@imsgate.test", Password: wrongSIPPassword})
		registerWebUA(t, gw, ua)
		requireCallStatus(t, gw, ua, denied, http.StatusForbidden)
		requireNotRelayed(t, gw, kam, deniedNumber)
		// Relayed: the gateway answers Kamailio's 407; Kamailio has no
		// binding for the number.
		requireCallStatus(t, gw, ua, other, http.StatusNotFound)
	})
	t.Run("click_to_call", func(t *testing.T) {
		kam := startKamailio(t)
		gw := startGateway(t, abuseConfig(tokenConfig(t)), repoRoot())
		claims := newClaims("visitor-7", 5*time.Minute)
		claims.ClickToCall = []string{"+1900*"}
		ua := dialWebUAWith(t, "webua", webua.Config{URL: tokenURL(signToken(t, tokenSecret, claims)), AoR: "sip:visitor@imsgate.test", Password: wrongSIPPassword})
		requireCallStatus(t, gw, ua, denied, http.StatusForbidden)
		requireNotRelayed(t, gw, kam, deniedNumber)
	})
}

// requireCallStatus: the browser's call to target ends with status.
func requireCallStatus(t *testing.T, gw *proc, ua *webua.UA, target string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callStep)
	defer cancel()
	call, res := inviteResult(ctx, t, gw, ua, target)
	t.Logf("call to %s: %d %s", target, res.StatusCode, res.Reason)
	if res.StatusCode != status {
		if res.IsSuccess() {
			_ = call.HangUp(ctx)
		}
		failGateway(t, gw, "call to %s answered %d %s, want %d", target, res.StatusCode, res.Reason, status)
	}
}

// requireNotRelayed: Kamailio never saw an INVITE for number.
func requireNotRelayed(t *testing.T, gw, kam *proc, number string) {
	t.Helper()
	if strings.Contains(kam.log(), "request INVITE sip:"+number) {
		failGateway(t, gw, "the INVITE to %s reached Kamailio:\n%s", number, tail(kam.log(), 20))
	}
}

// roundResult is one round of the browser at 127.0.0.2: a new WebSocket,
// REGISTER (Kamailio's 401 answered), a call to the echo (its 407
// answered) that hears minHeard packets, BYE, de-REGISTER.
type roundResult struct {
	n        int
	register time.Duration // first REGISTER to its 200
	setup    time.Duration // first INVITE to its 200
	media    webua.MediaStats
	err      error
}

func goodRound(ctx context.Context, api *webrtc.API, log *zap.Logger, n int) (r roundResult) {
	r.n = n
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*callStep)
	defer cancel()
	ua, err := webua.Dial(ctx, webua.Config{URL: "ws://" + gatewayWSAddr + "/", AoR: "sip:bob@imsgate.test", Password: "secret",
		Log: log.With(zap.Int("round", n)), API: api, LocalIP: goodIP})
	if err != nil {
		r.err = err
		return r
	}
	defer ua.Close()
	start := time.Now()
	res, err := ua.Register(ctx, 600*time.Second)
	if err != nil || !res.IsSuccess() {
		r.err = fmt.Errorf("register: %v %v", statusOf(res), err)
		return r
	}
	r.register = time.Since(start)
	start = time.Now()
	call, res, err := inviteAuthorized(ctx, ua, "sip:echo@imsgate.test")
	if err != nil || !res.IsSuccess() {
		r.err = fmt.Errorf("call the echo: %v %v", statusOf(res), err)
		return r
	}
	r.setup = time.Since(start)
	for call.Media().Received < minHeard {
		select {
		case <-call.Ended():
			r.err = fmt.Errorf("call ended (%s) with %+v", call.EndReason(), call.Media())
			return r
		case <-ctx.Done():
			r.err = fmt.Errorf("media: %+v after %s", call.Media(), time.Since(start))
			_ = call.HangUp(context.Background())
			return r
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.media = call.Media()
	if err := call.HangUp(ctx); err != nil {
		r.err = err
		return r
	}
	if res, err := ua.Unregister(ctx); err != nil || !res.IsSuccess() {
		r.err = fmt.Errorf("unregister: %v %v", statusOf(res), err)
	}
	return r
}

// inviteAuthorized calls target and, when the core challenges the INVITE,
// calls again with the answer to its challenge, as a browser does.
func inviteAuthorized(ctx context.Context, ua *webua.UA, target string) (*webua.Call, *sip.Response, error) {
	call, err := ua.Invite(ctx, target)
	if err != nil {
		return nil, nil, err
	}
	res, err := call.Result(ctx)
	if err != nil {
		return nil, nil, err
	}
	if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusProxyAuthRequired {
		return call, res, nil
	}
	if call, err = ua.Invite(ctx, target, webua.WithChallenge(res)); err != nil {
		return nil, nil, err
	}
	res, err = call.Result(ctx)
	return call, res, err
}

func statusOf(res *sip.Response) string {
	if res == nil {
		return "no response"
	}
	return fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
}

// floodTally is what the flooders saw.
type floodTally struct {
	mu       sync.Mutex
	upgrades map[int]int // the upgrade flood's answers by HTTP status; 0: none (reset at accept)
	retry429 int         // the upgrade flood's 429s with Retry-After
	redials  map[int]int // the request flooders' reconnections, likewise
	open     int         // the upgrade flood's connections the gateway still holds
	maxOpen  int
	conns    []floodConn
	slow     []slowResult
}

func newFloodTally() *floodTally {
	return &floodTally{upgrades: map[int]int{}, redials: map[int]int{}}
}

// floodConn is one request flooder's connection, once it ended.
type floodConn struct {
	kind        sip.RequestMethod
	lifetime    time.Duration
	sent        int
	provisional int
	finals      map[int]int // final responses by status
	retryAfter  int         // 503s with Retry-After
	closeCode   int         // the gateway's close; 0 when the flooder closed
	closeReason string
}

// floodUpgrades opens WebSockets from 127.0.0.1 at floodUpgradesPerSec
// and holds the ones it gets until the flood ends.
func floodUpgrades(ctx context.Context, tally *floodTally) {
	var held []*websocket.Conn
	var readers sync.WaitGroup
	tick := time.NewTicker(time.Second / floodUpgradesPerSec)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-tick.C:
		}
		conn, status, retry := dialFrom(ctx, flooderIP)
		tally.mu.Lock()
		tally.upgrades[status]++
		if status == http.StatusTooManyRequests && retry {
			tally.retry429++
		}
		if conn != nil {
			tally.open++
			tally.maxOpen = max(tally.maxOpen, tally.open)
		}
		tally.mu.Unlock()
		if conn == nil {
			continue
		}
		held = append(held, conn)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					tally.mu.Lock()
					tally.open--
					tally.mu.Unlock()
					return
				}
			}
		}()
	}
	for _, c := range held {
		c.Close()
	}
	readers.Wait()
}

// dialFrom upgrades a WebSocket from source address ip; the status is the
// HTTP answer (101 when upgraded, 0 when none came), retry whether it
// carried Retry-After.
func dialFrom(ctx context.Context, ip net.IP) (conn *websocket.Conn, status int, retry bool) {
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	d := websocket.Dialer{Subprotocols: []string{"sip"}, HandshakeTimeout: 5 * time.Second, NetDialContext: nd.DialContext}
	conn, resp, err := d.DialContext(ctx, "ws://"+gatewayWSAddr+"/", nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	switch {
	case err == nil:
		return conn, http.StatusSwitchingProtocols, false
	case resp != nil:
		return nil, resp.StatusCode, resp.Header.Get("Retry-After") != ""
	default:
		return nil, 0, false
	}
}

// floodRequests sends kind at floodRequestsPerSec on a connection from
// 127.0.0.1 (INVITEs after registering alice on it, so the gateway relays
// them), and on a new one whenever the gateway closes it, until ctx ends.
func floodRequests(ctx context.Context, kind sip.RequestMethod, api *webrtc.API, log *zap.Logger, tally *floodTally, connected chan<- struct{}) {
	first := true
	for ctx.Err() == nil {
		ua, err := webua.Dial(ctx, webua.Config{URL: "ws://" + gatewayWSAddr + "/", AoR: "sip:alice@imsgate.test", Password: "secret",
			Log: log.With(zap.String("flood", string(kind))), API: api, LocalIP: flooderIP})
		if err != nil {
			status := 0
			var he *webua.HandshakeError
			if errors.As(err, &he) {
				status = he.StatusCode
			}
			tally.mu.Lock()
			tally.redials[status]++
			tally.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if !first {
			tally.mu.Lock()
			tally.redials[http.StatusSwitchingProtocols]++
			tally.mu.Unlock()
		}
		if kind == sip.INVITE {
			if res, err := ua.Register(ctx, 600*time.Second); err != nil || !res.IsSuccess() {
				log.Warn("flooder could not register", zap.String("status", statusOf(res)), zap.Error(err))
				ua.Close()
				continue
			}
		}
		if first {
			connected <- struct{}{}
			first = false
		}
		c := floodOn(ctx, kind, ua)
		tally.mu.Lock()
		tally.conns = append(tally.conns, c)
		tally.mu.Unlock()
	}
}

// floodOn sends kind on ua until ctx ends or the gateway closes it, and
// counts the answers; it closes ua.
func floodOn(ctx context.Context, kind sip.RequestMethod, ua *webua.UA) floodConn {
	c := floodConn{kind: kind, finals: map[int]int{}}
	start := time.Now()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for raw := range ua.Unmatched() {
			c.count(raw)
		}
	}()
	tick := time.NewTicker(time.Second / floodRequestsPerSec)
	defer tick.Stop()
	build := rawRegister
	if kind == sip.INVITE {
		build = rawInvite
	}
send:
	for {
		select {
		case <-ctx.Done():
			break send
		case <-drained:
			break send
		case <-tick.C:
		}
		if err := ua.Send(build()); err != nil {
			break
		}
		c.sent++
	}
	c.lifetime = time.Since(start)
	if ctx.Err() == nil {
		select { // the gateway's close frame, on its way
		case <-drained:
		case <-time.After(time.Second):
		}
	}
	c.closeCode, c.closeReason, _ = ua.Closed()
	ua.Close()
	<-drained
	return c
}

// count reads one frame the flooder got: a response's status.
func (c *floodConn) count(raw []byte) {
	line, rest, _ := strings.Cut(string(raw), "\r\n")
	status, ok := strings.CutPrefix(line, "SIP/2.0 ")
	if !ok {
		return // a request of the gateway's
	}
	code, err := strconv.Atoi(strings.SplitN(status, " ", 2)[0])
	if err != nil {
		return
	}
	if code < 200 {
		c.provisional++
		return
	}
	c.finals[code]++
	if code == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(rest), "\r\nretry-after:") {
		c.retryAfter++
	}
}

// rawRegister is an unauthenticated REGISTER of alice, a new Call-ID each
// time, as a flooder sends.
func rawRegister() []byte {
	return fmt.Appendf(nil, "REGISTER sip:imsgate.test SIP/2.0\r\n"+
		"Via: SIP/2.0/WS %s.invalid;branch=z9hG4bK%s\r\n"+
		"Max-Forwards: 70\r\n"+
		"To: <sip:alice@imsgate.test>\r\n"+
		"From: <sip:alice@imsgate.test>;tag=%s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:%s@%s.invalid;transport=ws>;expires=600\r\n"+
		"Expires: 600\r\n"+
		"Content-Length: 0\r\n\r\n",
		randToken(12), randToken(16), randToken(10), randToken(22), randToken(8), randToken(12))
}

// rawInvite is an INVITE from alice to the echo with a browser's offer,
// a new dialog each time; the flooder never ACKs or answers a challenge.
func rawInvite() []byte {
	sdp := strings.ReplaceAll(floodOffer, "\n", "\r\n")
	return fmt.Appendf(nil, "INVITE sip:echo@imsgate.test SIP/2.0\r\n"+
		"Via: SIP/2.0/WS %s.invalid;branch=z9hG4bK%s\r\n"+
		"Max-Forwards: 70\r\n"+
		"To: <sip:echo@imsgate.test>\r\n"+
		"From: <sip:alice@imsgate.test>;tag=%s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:%s@%s.invalid;transport=ws;ob>\r\n"+
		"Allow: INVITE,ACK,CANCEL,BYE,UPDATE,INFO,OPTIONS\r\n"+
		"Content-Type: application/sdp\r\n"+
		"Content-Length: %d\r\n\r\n%s",
		randToken(12), randToken(16), randToken(10), randToken(22), randToken(8), randToken(12), len(sdp), sdp)
}

// floodOffer is Chrome's audio offer with one host candidate where nobody
// listens: the flooder never means to talk.
const floodOffer = `v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=msid-semantic: WMS 7b2e0a6c-1f4e-4b8e-9d3c-2a9f0e5d6c41
m=audio 50000 UDP/TLS/RTP/SAVPF 111 0 8 126
c=IN IP4 127.0.0.1
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0
a=end-of-candidates
a=ice-ufrag:wJ8r
a=ice-pwd:Vq3hWmC0bJ4n2oYfK6sTzXpE
a=fingerprint:sha-256 5C:1F:8D:62:3A:0B:9E:77:44:C1:D2:E5:F8:19:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:1A:2B:3C
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:126 telephone-event/8000
a=ssrc:2952719043 cname:p1Lr7fKxqA2sW9dE
`

const randAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = randAlphabet[mrand.IntN(len(randAlphabet))]
	}
	return string(b)
}

// oversizedUpgrade sends an upgrade request with about size bytes of
// headers from 127.0.0.1 and returns the HTTP answer.
func oversizedUpgrade(t *testing.T, size int) (int, string) {
	t.Helper()
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: flooderIP}, Timeout: 5 * time.Second}
	conn, err := nd.Dial("tcp", gatewayWSAddr)
	if err != nil {
		t.Fatalf("dial %s: %v", gatewayWSAddr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req strings.Builder
	req.WriteString(upgradeHead)
	for i := 0; req.Len() < size; i++ {
		fmt.Fprintf(&req, "X-Padding-%d: %s\r\n", i, strings.Repeat("p", 200))
	}
	req.WriteString("\r\n")
	if _, err := conn.Write([]byte(req.String())); err != nil {
		return 0, "write: " + err.Error()
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "read: " + err.Error()
	}
	res.Body.Close()
	return res.StatusCode, res.Status
}

// upgradeHead is a browser's WebSocket upgrade, without its final CRLF.
const upgradeHead = "GET / HTTP/1.1\r\n" +
	"Host: " + gatewayWSAddr + "\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Protocol: sip\r\n"

// slowResult is one slowloris upgrade: how long it lasted, whether the
// gateway cut it, and what it answered before (often nothing).
type slowResult struct {
	lasted time.Duration
	cut    bool
	answer string
}

// slowloris dribbles an upgrade's headers from 127.0.0.1, a byte every
// 200 ms, until the gateway cuts it or ctx ends.
func slowloris(ctx context.Context) slowResult {
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: flooderIP}}
	conn, err := nd.DialContext(ctx, "tcp", gatewayWSAddr)
	if err != nil {
		return slowResult{answer: "dial: " + err.Error()}
	}
	defer conn.Close()
	start := time.Now()
	read := make(chan string, 1)
	go func() {
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		read <- line
	}()
	_, _ = conn.Write([]byte(upgradeHead))
	dribble := "X-Slow: " + strings.Repeat("s", 4096)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case answer := <-read:
			return slowResult{lasted: time.Since(start), cut: true, answer: answer}
		case <-ctx.Done():
			lasted := time.Since(start)
			conn.Close()
			<-read
			return slowResult{lasted: lasted}
		case <-tick.C:
			_, _ = conn.Write([]byte{dribble[i%len(dribble)]})
		}
	}
}

// procSample is the gateway process at one moment: CPU time used so far
// (user + system, clock ticks of 10 ms), resident memory, open descriptors.
type procSample struct {
	at       time.Time
	cpuTicks uint64
	rssKB    int
	fds      int
}

func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command's closing parenthesis: state is field 3,
	// utime 14 and stime 15 (proc(5)).
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	s.cpuTicks = utime + stime
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(fds)
	}
	return s, nil
}

// sampleEvery samples the process every interval until ctx ends, and once
// more then.
func sampleEvery(ctx context.Context, pid int, interval time.Duration) []procSample {
	var out []procSample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if s, err := sampleProc(pid); err == nil {
			out = append(out, s)
		}
		select {
		case <-ctx.Done():
			if s, err := sampleProc(pid); err == nil {
				out = append(out, s)
			}
			return out
		case <-tick.C:
		}
	}
}

// floodFigures is the flood's account: what was sent and answered, and
// what it cost the gateway.
func floodFigures(tally *floodTally, before procSample, series []procSample, settled procSample, took time.Duration,
	baseline roundResult, during []roundResult, after roundResult) string {
	tally.mu.Lock()
	defer tally.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "flood of %s from 127.0.0.1\n", took.Round(time.Millisecond))
	fmt.Fprintf(&b, "upgrades: %d attempts, answers %s (0: reset at accept; 429 with Retry-After: %d); at most %d held open at once\n",
		sumCounts(tally.upgrades), countsString(tally.upgrades), tally.retry429, tally.maxOpen)
	fmt.Fprintf(&b, "reconnections of the request flooders: %s\n", countsString(tally.redials))
	for _, kind := range []sip.RequestMethod{sip.REGISTER, sip.INVITE} {
		var conns, sent, provisional, retry int
		finals, closes := map[int]int{}, map[string]int{}
		var lifetimes []string
		for _, c := range tally.conns {
			if c.kind != kind {
				continue
			}
			conns++
			sent += c.sent
			provisional += c.provisional
			retry += c.retryAfter
			for code, n := range c.finals {
				finals[code] += n
			}
			closes[fmt.Sprintf("%d %q", c.closeCode, c.closeReason)]++
			lifetimes = append(lifetimes, fmt.Sprintf("%s/%d sent", c.lifetime.Round(100*time.Millisecond), c.sent))
		}
		fmt.Fprintf(&b, "%s flood: %d connections (%s), %d sent, finals %s (503 with Retry-After: %d), %d provisional; closes %v\n",
			kind, conns, strings.Join(lifetimes, ", "), sent, countsString(finals), retry, provisional, closes)
	}
	var cut, open int
	var longest time.Duration
	answers := map[string]int{}
	for _, s := range tally.slow {
		if s.cut {
			cut++
			longest = max(longest, s.lasted)
		} else {
			open++
		}
		answers[fmt.Sprintf("%q", s.answer)]++
	}
	fmt.Fprintf(&b, "slowloris: %d upgrades cut (the longest after %s), %d still dribbling when the flood ended; answers %v\n",
		cut, longest.Round(time.Millisecond), open, answers)
	var peakRSS, peakFDs int
	for _, s := range series {
		peakRSS, peakFDs = max(peakRSS, s.rssKB), max(peakFDs, s.fds)
	}
	if len(series) > 1 {
		first, last := series[0], series[len(series)-1]
		cpu := float64(last.cpuTicks-first.cpuTicks) / 100
		wall := last.at.Sub(first.at).Seconds()
		fmt.Fprintf(&b, "gateway CPU during the flood: %.2f s in %.1f s (%.0f%% of one core)\n", cpu, wall, 100*cpu/wall)
	}
	fmt.Fprintf(&b, "gateway RSS: %.1f MiB before, %.1f MiB peak during, %.1f MiB 1 s after; open descriptors %d before, %d peak, %d after\n",
		float64(before.rssKB)/1024, float64(peakRSS)/1024, float64(settled.rssKB)/1024, before.fds, peakFDs, settled.fds)
	round := func(label string, r roundResult) {
		if r.err != nil {
			fmt.Fprintf(&b, "%s round %d: FAILED: %v\n", label, r.n, r.err)
			return
		}
		fmt.Fprintf(&b, "%s round %d: REGISTER %s, call set up in %s, %d RTP sent / %d received\n",
			label, r.n, r.register.Round(time.Millisecond), r.setup.Round(time.Millisecond), r.media.Sent, r.media.Received)
	}
	round("browser at 127.0.0.2 before the flood:", baseline)
	for _, r := range during {
		round("browser at 127.0.0.2 during the flood:", r)
	}
	round("browser at 127.0.0.2 after the flood:", after)
	return b.String()
}

func sumCounts(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// countsString is "101×40 429×560", by status.
func countsString(m map[int]int) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, m[c]))
	}
	return strings.Join(parts, " ")
}

// testLogger logs at debug into artifacts/<test>/<name>.log until the
// test ends.
func testLogger(t *testing.T, name string) *zap.Logger {
	t.Helper()
	f, err := os.Create(filepath.Join(artifactDir(t), name+".log"))
	if err != nil {
		t.Fatalf("%s log: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.Lock(f), zap.DebugLevel))
}
