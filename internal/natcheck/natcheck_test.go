package natcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/imsgate/imsgate/internal/stunserver"
)

const testTimeout = time.Second

func leakCheck(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// stunServer runs our server on 127.0.0.1, with 127.0.0.2 as the
// alternate IP when rfc5780.
func stunServer(t *testing.T, rfc5780 bool) *stunserver.Server {
	t.Helper()
	cfg := stunserver.Config{Listen: "127.0.0.1:0", Software: "natcheck test"}
	if rfc5780 {
		cfg.AlternateIP = "127.0.0.2"
	}
	s, err := stunserver.New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRunWithoutNAT(t *testing.T) {
	leakCheck(t)
	s := stunServer(t, true)
	r, err := Run(context.Background(), Options{Server: s.Addrs().Primary.String(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	// On loopback nothing translates: the server sees the socket's own
	// address, and every door is open.
	if r.Mapped != r.Local || r.BehindNAT || r.UDPBlocked || r.OtherAddress != s.Addrs().AltBoth {
		t.Errorf("addresses: %+v", r)
	}
	if r.Mapping != EndpointIndependent || r.Filtering != EndpointIndependent || r.Hairpinning != HairpinningYes {
		t.Errorf("mapping %s, filtering %s, hairpinning %s", r.Mapping, r.Filtering, r.Hairpinning)
	}
	if r.Classic() != "open internet" || r.Advice() != "direct media works" || len(r.Notes) != 0 {
		t.Errorf("classic %q, advice %q, notes %v", r.Classic(), r.Advice(), r.Notes)
	}
}

func TestRunLocalPort(t *testing.T) {
	leakCheck(t)
	s := stunServer(t, true)
	hold, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := hold.LocalAddr().(*net.UDPAddr).Port
	_ = hold.Close()
	local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	r, err := Run(context.Background(), Options{Server: s.Addrs().Primary.String(), Local: local.String(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if r.Local != local || r.Mapped != local {
		t.Errorf("local %v, mapped %v, want %v", r.Local, r.Mapped, local)
	}
}

func TestRunLifetimeWithoutNAT(t *testing.T) {
	leakCheck(t)
	s := stunServer(t, true)
	r, err := Run(context.Background(), Options{Server: s.Addrs().Primary.String(), Timeout: testTimeout, Lifetime: true, LifetimeMax: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing expires on loopback: alive at the longest idle tried.
	if r.BindingLifetime != 2*time.Second || r.BindingLifetimeDead != 0 || len(r.Notes) != 0 {
		t.Errorf("lifetime %s, dead %s, notes %v", r.BindingLifetime, r.BindingLifetimeDead, r.Notes)
	}
}

func TestRunPlainServer(t *testing.T) {
	leakCheck(t)
	s := stunServer(t, false)
	r, err := Run(context.Background(), Options{Server: s.Addrs().Primary.String(), Timeout: testTimeout, Lifetime: true, LifetimeMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Without OTHER-ADDRESS the filtering cannot be tested; mapping is
	// known only because there is no NAT. RESPONSE-PORT works without
	// RFC 5780's second address.
	if r.Filtering != BehaviorUnknown || r.Mapping != EndpointIndependent || r.BindingLifetime != time.Second {
		t.Errorf("%+v", r)
	}
	if len(r.Notes) != 1 || r.Notes[0].Test != "filtering" || !strings.Contains(r.Notes[0].Reason, "OTHER-ADDRESS") {
		t.Errorf("notes %v", r.Notes)
	}
	if r.Classic() != "no NAT (filtering unknown)" {
		t.Errorf("classic %q", r.Classic())
	}
}

// silent is a UDP socket that reads and never answers: a server behind a
// firewall that drops UDP.
func silent(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestRunUDPBlocked(t *testing.T) {
	leakCheck(t)
	r, err := Run(context.Background(), Options{Server: silent(t).String(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !r.UDPBlocked || r.Classic() != "UDP blocked" || r.Advice() != "needs TURN over TCP or TLS (UDP blocked)" {
		t.Errorf("%+v: %q, %q", r, r.Classic(), r.Advice())
	}
}

func TestRunCancelled(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Run(ctx, Options{Server: silent(t).String(), Timeout: time.Minute})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

// liar answers every Binding request from where it was asked, whatever
// CHANGE-REQUEST says, and claims an OTHER-ADDRESS: a broken RFC 5780
// server that would make every NAT look open.
func liar(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req := new(stun.Message)
			if stun.Decode(buf[:n], req) != nil {
				continue
			}
			resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
				&stun.OtherAddress{IP: net.IPv4(127, 0, 0, 2), Port: 9})
			if err == nil {
				_, _ = c.WriteToUDPAddrPort(resp.Raw, from)
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestRunServerIgnoringChangeRequest(t *testing.T) {
	leakCheck(t)
	r, err := Run(context.Background(), Options{Server: liar(t).String(), Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if r.Filtering != BehaviorUnknown || len(r.Notes) != 1 || !strings.Contains(r.Notes[0].Reason, "came from") {
		t.Errorf("filtering %s, notes %v", r.Filtering, r.Notes)
	}
}

func TestClassicAndAdvice(t *testing.T) {
	const (
		eim, ad, apd, unknown = EndpointIndependent, AddressDependent, AddressAndPortDependent, BehaviorUnknown
	)
	for _, tc := range []struct {
		r       Result
		classic string
		advice  string
	}{
		{Result{UDPBlocked: true}, "UDP blocked", "needs TURN over TCP or TLS (UDP blocked)"},
		{Result{Mapping: eim, Filtering: eim}, "open internet", "direct media works"},
		{Result{Mapping: eim, Filtering: apd}, "symmetric UDP firewall", "direct media works (ICE: both sides send first)"},
		{Result{BehindNAT: true, Mapping: eim, Filtering: eim}, "full cone", "direct media works (ICE: both sides send first)"},
		{Result{BehindNAT: true, Mapping: eim, Filtering: ad}, "restricted cone", "direct media works (ICE: both sides send first)"},
		{Result{BehindNAT: true, Mapping: eim, Filtering: apd}, "port-restricted cone", "direct media works (ICE: both sides send first)"},
		{Result{BehindNAT: true, Mapping: eim}, "cone NAT (filtering unknown)", "direct media works (ICE: both sides send first)"},
		{Result{BehindNAT: true, Mapping: apd, Filtering: apd}, "symmetric", "needs TURN over UDP (the NAT maps each destination apart)"},
		{Result{BehindNAT: true, Mapping: ad, Filtering: unknown}, "symmetric", "needs TURN over UDP (the NAT maps each destination apart)"},
		{Result{BehindNAT: true}, "NAT of unknown type", "could not tell: keep TURN available"},
	} {
		if got := tc.r.Classic(); got != tc.classic {
			t.Errorf("%+v: classic %q, want %q", tc.r, got, tc.classic)
		}
		if got := tc.r.Advice(); got != tc.advice {
			t.Errorf("%+v: advice %q, want %q", tc.r, got, tc.advice)
		}
	}
	for b, want := range map[Behavior]string{unknown: "unknown", eim: "endpoint-independent", ad: "address-dependent", apd: "address-and-port-dependent"} {
		if b.String() != want {
			t.Errorf("%d: %q", b, b.String())
		}
	}
}

func TestMain_(t *testing.T) {
	leakCheck(t)
	s := stunServer(t, true)
	server := s.Addrs().Primary.String()
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string // in stdout
		err  string   // in stderr
	}{
		{"text", []string{"-stun", server, "-timeout", "1s"}, 0, []string{"mapping           endpoint-independent", "classic type      open internet", "advice            direct media works"}, ""},
		{"json", []string{"-stun", server, "-timeout", "1s", "-json"}, 0, []string{`"classic": "open internet"`, `"mapping": "endpoint-independent"`}, ""},
		{"unknown flag", []string{"-nope"}, 2, nil, "flag provided but not defined"},
		{"argument", []string{"-stun", server, "extra"}, 2, nil, "unexpected argument"},
		{"bad server", []string{"-stun", "nonsense"}, 2, nil, "bad STUN server address"},
		{"bad local", []string{"-stun", server, "-local", "here"}, 2, nil, "bad local address"},
		{"bad timeout", []string{"-timeout", "-1s"}, 2, nil, "timeout must be positive"},
		{"local not here", []string{"-stun", server, "-local", "192.0.2.1"}, 1, nil, "listen 192.0.2.1:0"},
		{"help", []string{"-h"}, 0, nil, "usage: imsgate natcheck"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Main(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %s; stderr %s", code, tc.code, out.String(), errb.String())
			}
			for _, want := range tc.out {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			if !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, errb.String())
			}
			if tc.name == "json" {
				var j map[string]any
				if err := json.Unmarshal(out.Bytes(), &j); err != nil || j["behind_nat"] != false || j["hairpinning"] != "yes" {
					t.Errorf("json %v: %v", j, err)
				}
			}
		})
	}
}
