package netcheck

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/mediabridge"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newEngine starts a media engine on loopback, with ICE-TCP when tcp.
func newEngine(t *testing.T, tcp bool) *mediabridge.Engine {
	t.Helper()
	var opts []mediabridge.EngineOption
	if tcp {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, mediabridge.WithWebRTCTCPListener(ln))
	}
	e, err := mediabridge.NewEngine(configs.Media{PublicIP: "127.0.0.1", RTPPorts: "42000-42099", Codecs: []string{"opus", "PCMU"}}, zap.NewNop(), opts...)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return e
}

// browser is a pion PeerConnection playing the page's probe.
type browser struct {
	pc        *webrtc.PeerConnection
	connected chan struct{}
}

// newBrowser makes a browser with UDP and TCP host candidates on lo and
// an audio transceiver, and returns its complete offer.
func newBrowser(t *testing.T) (*browser, string) {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	b := &browser{pc: pc, connected: make(chan struct{})}
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(b.connected) })
		}
	})
	t.Cleanup(func() {
		if err := pc.Close(); err != nil {
			t.Errorf("browser close: %v", err)
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	wait(t, "gathering", done)
	return b, pc.LocalDescription().SDP
}

func wait(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitFor polls cond until it holds; for state with no channel to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running is how many probes hold a slot, in all and from ip.
func (s *server) running(ip string) (all, fromIP int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, n := range s.perIP {
		if a.String() == ip {
			fromIP = n
		}
	}
	return len(s.probes), fromIP
}

// post sends an offer to path (the query's value) as ip.
func post(h http.Handler, ip, path, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/netcheck/probe?path="+path, strings.NewReader(body))
	r.RemoteAddr = ip + ":40000"
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// del ends the probe at loc.
func del(h http.Handler, loc string) int {
	r := httptest.NewRequest(http.MethodDelete, loc, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestPage(t *testing.T) {
	_, h := newHandler(newEngine(t, false), Config{}, zap.NewNop())
	for _, tc := range []struct {
		name, path string
		status     int
		ctype      string
		want       []string
	}{
		{"page", "/netcheck/", 200, "text/html", []string{"<h1>Network check</h1>", `src="netcheck.js"`, "?token=", `id="summary"`}},
		{"script", "/netcheck/netcheck.js", 200, "text/javascript", []string{"window.netcheck", "probe?path=", "iceTransportPolicy: 'relay'", "../ice-servers"}},
		{"nothing else", "/netcheck/index.html", 404, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body has no %q", s)
				}
			}
		})
	}
}

// TestBadRequests: each refused with its status and a reason, no slot
// kept; a good offer from the page's own origin or a listed one is taken.
func TestBadRequests(t *testing.T) {
	s, h := newHandler(newEngine(t, false), Config{Origins: []string{"https://app.example"}}, zap.NewNop())
	_, offer := newBrowser(t)
	const sdpType = "application/sdp"
	for _, tc := range []struct {
		name, method, target, ctype, origin, body string
		contentLength                             int64 // -1: unknown (chunked)
		status                                    int
		reason                                    string
	}{
		{name: "GET on probe", method: "GET", target: "/netcheck/probe?path=udp", status: 405},
		{name: "PUT on probe", method: "PUT", target: "/netcheck/probe?path=udp", ctype: sdpType, body: offer, status: 405},
		{name: "no path", method: "POST", target: "/netcheck/probe", ctype: sdpType, body: offer, status: 400, reason: "path must be udp, tcp or any"},
		{name: "unknown path", method: "POST", target: "/netcheck/probe?path=dns", ctype: sdpType, body: offer, status: 400, reason: "path must be"},
		{name: "no content type", method: "POST", target: "/netcheck/probe?path=udp", body: offer, status: 415, reason: "application/sdp"},
		{name: "text/plain", method: "POST", target: "/netcheck/probe?path=udp", ctype: "text/plain", body: offer, status: 415},
		{name: "too big", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, body: offer + strings.Repeat("a=x\r\n", 4096), status: 413, reason: "over 16384 bytes"},
		{name: "too big, no length", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, body: offer + strings.Repeat("a=x\r\n", 4096), contentLength: -1, status: 413},
		{name: "not sdp", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, body: "GET / HTTP/1.1\r\n", status: 400, reason: "bad sdp"},
		{name: "empty", method: "POST", target: "/netcheck/probe?path=any", ctype: sdpType, status: 400, reason: "bad sdp: empty"},
		{name: "no audio", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, body: strings.ReplaceAll(offer, "m=audio", "m=video"), status: 400, reason: "no common codec"},
		{name: "no fingerprint", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, body: strings.ReplaceAll(offer, "a=fingerprint", "a=x"), status: 400, reason: "fingerprint"},
		{name: "no ICE-TCP here", method: "POST", target: "/netcheck/probe?path=tcp", ctype: sdpType, body: offer, status: 501, reason: "no ICE-TCP port"},
		{name: "other origin", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, origin: "https://evil.example", body: offer, status: 403},
		{name: "other origin ends a probe", method: "DELETE", target: "/netcheck/probe/00", origin: "https://evil.example", status: 403},
		{name: "no such probe", method: "DELETE", target: "/netcheck/probe/0123456789abcdef", status: 404},
		{name: "own origin", method: "POST", target: "/netcheck/probe?path=udp", ctype: sdpType, origin: "http://gw.example:8080", body: offer, status: 201},
		{name: "listed origin", method: "POST", target: "/netcheck/probe?path=any", ctype: "application/sdp; charset=utf-8", origin: "https://app.example", body: offer, status: 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			r.Host = "gw.example:8080"
			if tc.contentLength != 0 {
				r.ContentLength = tc.contentLength
				r.Body = io.NopCloser(strings.NewReader(tc.body))
			}
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.reason) {
				t.Fatalf("%d %q, want %d with %q", w.Code, w.Body, tc.status, tc.reason)
			}
			if tc.status == 201 {
				if ct := w.Header().Get("Content-Type"); ct != "application/sdp" {
					t.Errorf("answer Content-Type %q", ct)
				}
				if code := del(h, w.Header().Get("Location")); code != 204 {
					t.Errorf("DELETE %s: %d", w.Header().Get("Location"), code)
				}
			}
			if all, _ := s.running(""); all != 0 {
				t.Errorf("%d probes left running", all)
			}
		})
	}
}

// TestLimits: 4 probes from one address, 32 in all; a slot comes back when
// its probe is DELETEd or reaches MaxAge, and nothing is left behind.
func TestLimits(t *testing.T) {
	s, h := newHandler(newEngine(t, false), Config{}, zap.NewNop())
	_, offer := newBrowser(t)
	var locs []string
	for i := range 8 {
		ip := fmt.Sprintf("192.0.2.%d", i+1)
		for range DefaultMaxPerIP {
			w := post(h, ip, "udp", "application/sdp", offer)
			if w.Code != 201 {
				t.Fatalf("probe from %s: %d %s", ip, w.Code, w.Body)
			}
			locs = append(locs, w.Header().Get("Location"))
		}
		if i == 0 {
			w := post(h, ip, "udp", "application/sdp", offer)
			if w.Code != 429 || !strings.Contains(w.Body.String(), "from your address") || w.Header().Get("Retry-After") != "20" {
				t.Fatalf("5th probe from %s: %d %q Retry-After %q; want 429 from your address, 20", ip, w.Code, w.Body, w.Header().Get("Retry-After"))
			}
		}
	}
	if all, one := s.running("192.0.2.1"); all != DefaultMaxProbes || one != DefaultMaxPerIP {
		t.Fatalf("%d running, %d from 192.0.2.1; want %d and %d", all, one, DefaultMaxProbes, DefaultMaxPerIP)
	}
	if w := post(h, "198.51.100.7", "udp", "application/sdp", offer); w.Code != 429 || !strings.Contains(w.Body.String(), "on this gateway") {
		t.Fatalf("33rd probe: %d %q; want 429 on this gateway", w.Code, w.Body)
	}
	if code := del(h, locs[0]); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	if code := del(h, locs[0]); code != 404 {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	w := post(h, "192.0.2.1", "udp", "application/sdp", offer)
	if w.Code != 201 {
		t.Fatalf("probe after a DELETE: %d %s", w.Code, w.Body)
	}
	locs[0] = w.Header().Get("Location")
	for _, loc := range locs {
		if code := del(h, loc); code != 204 {
			t.Errorf("DELETE %s: %d", loc, code)
		}
	}
	s.mu.Lock()
	left, ips := len(s.probes), len(s.perIP)
	s.mu.Unlock()
	if left != 0 || ips != 0 {
		t.Errorf("%d probes and %d addresses left", left, ips)
	}

	t.Run("max age", func(t *testing.T) {
		s, h := newHandler(newEngine(t, false), Config{MaxAge: 300 * time.Millisecond, MaxPerIP: 1}, zap.NewNop())
		start := time.Now()
		if w := post(h, "192.0.2.1", "udp", "application/sdp", offer); w.Code != 201 {
			t.Fatalf("probe: %d %s", w.Code, w.Body)
		}
		if w := post(h, "192.0.2.1", "udp", "application/sdp", offer); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("second probe with max_per_ip 1: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
		}
		waitFor(t, "the probe's slot", func() bool { all, _ := s.running(""); return all == 0 })
		t.Logf("slot free after %v", time.Since(start).Round(time.Millisecond))
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("slot free after %v, before MaxAge", d)
		}
		if w := post(h, "192.0.2.1", "udp", "application/sdp", offer); w.Code != 201 {
			t.Fatalf("probe after the first expired: %d %s", w.Code, w.Body)
		}
	})
}

// TestSlowOffer: an offer whose body stops coming is cut after the read
// timeout with 400, and holds no slot meanwhile.
func TestSlowOffer(t *testing.T) {
	s, h := newHandler(newEngine(t, false), Config{}, zap.NewNop())
	s.readTimeout = 300 * time.Millisecond
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := fmt.Fprintf(c, "POST /netcheck/probe?path=udp HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 4000\r\n\r\nv=0\r\n"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.running(""); all != 0 {
		t.Errorf("%d slots taken while the body comes", all)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled offer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	t.Logf("after %v: %d %s", time.Since(start).Round(time.Millisecond), res.StatusCode, strings.TrimSpace(string(body)))
	if res.StatusCode != 400 || !strings.Contains(string(body), "offer not read") {
		t.Errorf("%d %q, want 400 offer not read", res.StatusCode, body)
	}
}

// TestProbe: a pion browser with UDP and TCP candidates posts its offer
// over HTTP; the answer names the path's candidates only, the browser
// connects over that path, and DELETE (or, over TCP, the browser closing)
// frees the slot.
func TestProbe(t *testing.T) {
	e := newEngine(t, true)
	tcpPort := e.WebRTCTCPAddr().(*net.TCPAddr).Port
	udpPort := e.WebRTCAddr().(*net.UDPAddr).Port
	s, h := newHandler(e, Config{}, zap.NewNop())
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		name, path string
		candidates []string // the answer's, by transport and port
		selected   string   // the browser's selected pair's remote protocol
		close      bool     // the browser closes instead of a DELETE
	}{
		{name: "udp", path: "udp", candidates: []string{fmt.Sprintf("udp %d", udpPort)}, selected: "udp"},
		{name: "tcp", path: "tcp", candidates: []string{fmt.Sprintf("tcp %d", tcpPort)}, selected: "tcp"},
		{name: "any", path: "any", candidates: []string{fmt.Sprintf("udp %d", udpPort), fmt.Sprintf("tcp %d", tcpPort)}, selected: "udp"},
		{name: "tcp, browser closes", path: "tcp", candidates: []string{fmt.Sprintf("tcp %d", tcpPort)}, selected: "tcp", close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, offer := newBrowser(t)
			start := time.Now()
			res, err := http.Post(srv.URL+"/netcheck/probe?path="+tc.path, "application/sdp", strings.NewReader(offer))
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 201 {
				t.Fatalf("POST: %d %s", res.StatusCode, answer)
			}
			var got []string
			for _, line := range strings.Split(string(answer), "\r\n") {
				if f := strings.Fields(line); strings.HasPrefix(line, "a=candidate:") && len(f) >= 6 {
					got = append(got, f[2]+" "+f[5])
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.candidates, ",") {
				t.Fatalf("answer candidates %v, want %v:\n%s", got, tc.candidates, answer)
			}
			if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
				t.Fatal(err)
			}
			wait(t, "browser connected", b.connected)
			setup := time.Since(start)
			pair, err := b.pc.GetTransceivers()[0].Sender().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil {
				t.Fatalf("selected pair: %v", err)
			}
			t.Logf("connected in %v over %s", setup.Round(time.Millisecond), pair)
			if pair.Remote.Protocol.String() != tc.selected {
				t.Errorf("selected pair %s, want remote %s", pair, tc.selected)
			}
			if all, _ := s.running("127.0.0.1"); all != 1 {
				t.Errorf("%d probes running, want 1", all)
			}
			if tc.close {
				if err := b.pc.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				req, _ := http.NewRequest(http.MethodDelete, srv.URL+res.Header.Get("Location"), nil)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 204 {
					t.Fatalf("DELETE: %d", res.StatusCode)
				}
			}
			waitFor(t, "the slot back", func() bool { all, _ := s.running(""); return all == 0 })
		})
	}
}
