package mediabridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// bothNetworks gives a test browser UDP and TCP candidates, so only the
// probe's answer decides the path.
func bothNetworks(se *webrtc.SettingEngine) {
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
}

// probeResults starts recording a probe's end.
func probeResults() (ProbeConfig, chan ProbeResult) {
	ch := make(chan ProbeResult, 1)
	return ProbeConfig{OnEnd: func(r ProbeResult) { ch <- r }}, ch
}

// TestProbeAnswer: the answer names the candidates asked for and nothing
// else, carries one audio codec of the offer, a=inactive, and our DTLS
// role; a bad offer or a transport the engine lacks is refused.
func TestProbeAnswer(t *testing.T) {
	e := newTCPTestEngine(t, nil)
	plain := newTestEngine(t)
	udpLine := fmt.Sprintf("a=candidate:1 1 udp %d 127.0.0.1 %d typ host", hostCandidatePriority, e.webRTCPort())
	tcpLine := tcpCandidateLine(e)
	offer := newTestBrowser(t, bothNetworks).offer(t)
	cases := []struct {
		name       string
		engine     *Engine
		transports []Transport
		offer      []byte
		want       []string
		err        error
	}{
		{name: "every candidate", engine: e, offer: offer, want: []string{udpLine, tcpLine}},
		{name: "udp only", engine: e, transports: []Transport{TransportUDP}, offer: offer, want: []string{udpLine}},
		{name: "tcp only", engine: e, transports: []Transport{TransportTCP}, offer: offer, want: []string{tcpLine}},
		{name: "both named", engine: e, transports: []Transport{TransportTCP, TransportUDP}, offer: offer, want: []string{udpLine, tcpLine}},
		{name: "no ice-tcp on this engine", engine: plain, transports: []Transport{TransportTCP}, offer: offer, err: ErrNoICETCP},
		{name: "unknown transport", engine: e, transports: []Transport{TransportUnknown}, offer: offer, err: errProbeTransport},
		{name: "not sdp", engine: e, offer: []byte("hello"), err: ErrBadSDP},
		{name: "empty", engine: e, offer: nil, err: ErrBadSDP},
		{name: "no fingerprint", engine: e, offer: []byte(strings.ReplaceAll(string(offer), "a=fingerprint:", "a=x-fingerprint:")), err: ErrBadSDP},
		{name: "no audio", engine: e, offer: []byte(strings.ReplaceAll(string(offer), "m=audio", "m=video")), err: ErrNoCommonCodec},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, answer, err := tc.engine.NewProbe(zap.NewNop(), tc.offer, ProbeConfig{Transports: tc.transports})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || p != nil {
					t.Fatalf("NewProbe: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewProbe: %v", err)
			}
			defer p.Close()
			if got := sdpLines(answer, "a=candidate"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("candidates\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, line := range []string{"a=inactive", "a=setup:passive", "a=ice-lite", "a=end-of-candidates", "m=audio 9 UDP/TLS/RTP/SAVPF 111"} {
				if len(sdpLines(answer, line)) != 1 {
					t.Errorf("answer has no %q:\n%s", line, answer)
				}
			}
		})
	}
	if n := e.PortPairsInUse(); n != 0 {
		t.Errorf("probes hold %d core port pairs", n)
	}
}

// TestProbeBrowser: a pion browser with UDP and TCP candidates connects to
// a probe over the one path its answer names; the probe reports it, and
// ends when closed, when the browser's TCP connection goes, at its MaxAge
// or when the engine closes.
func TestProbeBrowser(t *testing.T) {
	cases := []struct {
		name      string
		transport Transport
		end       ProbeEnd
		maxAge    time.Duration
	}{
		{name: "udp, closed", transport: TransportUDP, end: ProbeEndClosed},
		{name: "tcp, closed", transport: TransportTCP, end: ProbeEndClosed},
		{name: "tcp, browser gone", transport: TransportTCP, end: ProbeEndGone},
		{name: "udp, expired", transport: TransportUDP, end: ProbeEndExpired, maxAge: 2 * time.Second},
		{name: "udp, engine closed", transport: TransportUDP, end: ProbeEndShutdown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ln *Engine
			if tc.end == ProbeEndShutdown {
				// Closed by the test, not by its cleanup.
				tcp, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if ln, err = NewEngine(testMediaConfig(), zap.NewNop(), WithWebRTCTCPListener(tcp)); err != nil {
					t.Fatalf("NewEngine: %v", err)
				}
			} else {
				ln = newTCPTestEngine(t, nil)
			}
			browser := newTestBrowser(t, bothNetworks)
			cfg, ended := probeResults()
			cfg.Transports, cfg.MaxAge = []Transport{tc.transport}, tc.maxAge
			p, answer, err := ln.NewProbe(zap.NewNop(), browser.offer(t), cfg)
			if err != nil {
				t.Fatalf("NewProbe: %v", err)
			}
			browser.setAnswer(t, answer)
			waitChan(t, "browser connected", browser.connected)
			// The browser, DTLS client, may finish before the probe does.
			waitFor(t, "probe connected", func() bool { return p.conn.Load() != nil })
			var r ProbeResult
			switch tc.end {
			case ProbeEndClosed:
				r = p.Close()
				if again := p.Close(); again != r {
					t.Errorf("second Close: %+v, want %+v", again, r)
				}
			case ProbeEndGone:
				if err := browser.pc.Close(); err != nil {
					t.Fatalf("browser close: %v", err)
				}
			case ProbeEndShutdown:
				if err := ln.Close(); err != nil {
					t.Fatalf("engine close: %v", err)
				}
			}
			got := waitChan(t, "probe end", ended)
			if r.End != ProbeEndUnknown && r != got {
				t.Errorf("Close returned %+v, OnEnd got %+v", r, got)
			}
			t.Logf("probe: %+v", got)
			if got.End != tc.end || !got.Connected || got.Transport != tc.transport || got.Remote.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("probe result %+v; want connected over %v from 127.0.0.1, ended %v", got, tc.transport, tc.end)
			}
			if got.Setup <= 0 || got.Setup > got.Age || (tc.maxAge > 0 && got.Age < tc.maxAge) {
				t.Errorf("setup %v, age %v", got.Setup, got.Age)
			}
			if _, _, err := ln.NewProbe(zap.NewNop(), []byte(browser.pc.LocalDescription().SDP), ProbeConfig{}); tc.end == ProbeEndShutdown && !errors.Is(err, errEngineClosed) {
				t.Errorf("NewProbe after Close: %v, want %v", err, errEngineClosed)
			} else if tc.end != ProbeEndShutdown && err != nil {
				t.Errorf("NewProbe: %v", err)
			}
		})
	}
}
