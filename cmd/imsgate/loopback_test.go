package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/imsgate/imsgate/cmd/imsgate/democore"
	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/interop-tests/webua"
)

// The loopback integration test: the whole gateway in-process, a sipgo core
// (registrar with digest auth + echo target + caller) behind it, and Go
// browsers (pion over a real WebSocket) in front.

const domain = "imsgate.test"

type rig struct {
	t    *testing.T
	core *democore.Core
	gw   *app
	cfg  configs.Config // gw's, for a restart
	ws   string
	log  *zap.Logger
}

// restart stops the gateway and starts it again with the same config on
// the same addresses (the WebSocket's included).
func (r *rig) restart() {
	r.t.Helper()
	if err := r.gw.close(context.Background()); err != nil {
		r.t.Fatalf("gateway close: %v", err)
	}
	cfg := r.cfg
	cfg.WS.Listen = r.gw.WSAddr()
	gw, err := start(cfg, r.log.Named("gw"))
	if err != nil {
		r.t.Fatalf("restart: %v", err)
	}
	r.gw = gw
}

func newRig(t *testing.T) *rig { return newRigOn(t, "127.0.0.1") }

// newRigOn is a rig whose every listener, SIP and media address is ip.
func newRigOn(t *testing.T, ip string) *rig { return newRigWith(t, ip, nil) }

// newRigWith is newRigOn with the gateway's config edited first.
func newRigWith(t *testing.T, ip string, edit func(*configs.Config)) *rig {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	core, err := democore.New(democore.Options{
		Domain:  domain,
		Users:   map[string]string{"alice": "secret", "bob": "secret"},
		MediaIP: ip,
	}, log.Named("core"))
	if err != nil {
		t.Fatal(err)
	}
	any := net.JoinHostPort(ip, "0")
	pc, tcp, err := listenUDPAndTCP("core", any)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(pc, tcp); err != nil {
		t.Fatal(err)
	}
	cfg := configs.Default()
	cfg.WS.Listen = any
	cfg.SIP.Listen = any
	cfg.Admin.Listen = any
	cfg.Media.PublicIP = ip
	cfg.Upstream.Proxy = "sip:" + pc.LocalAddr().String() + ";transport=udp"
	cfg.Upstream.Domain = domain
	cfg.Upstream.InviteTimeout = 20 * time.Second
	cfg.Media.WebRTCPort = 0
	cfg.Media.RTPPorts = "43000-43999"
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gw, err := start(cfg, log.Named("gw"))
	if err != nil {
		core.Close()
		t.Fatal(err)
	}
	r := &rig{t: t, core: core, gw: gw, cfg: cfg, ws: "ws://" + gw.WSAddr() + "/", log: log}
	t.Cleanup(func() {
		if err := r.gw.close(context.Background()); err != nil {
			t.Errorf("gateway close: %v", err)
		}
		core.Close()
	})
	return r
}

// echoCall has ua call the demo echo and waits for the 200 and, when
// echoed > 0, that many echoed packets.
func echoCall(t *testing.T, ctx context.Context, ua *webua.UA, echoed int) *webua.Call {
	t.Helper()
	call, err := ua.Invite(ctx, "sip:echo@"+domain)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := call.Result(ctx); err != nil || res.StatusCode != 200 {
		t.Fatalf("echo: %v, %v; want 200", res, err)
	}
	if echoed > 0 {
		waitFor(t, ctx, "echoed audio", func() bool { return call.Media().Echoed >= uint64(echoed) })
	}
	return call
}

// answeredThenRefused is the operator tests' pair of calls: an echo call
// that carries audio (and digits, as INFO), hung up by ua, then a call the
// core refuses with 486.
func answeredThenRefused(t *testing.T, ctx context.Context, ua *webua.UA, digits ...string) {
	t.Helper()
	call := echoCall(t, ctx, ua, 10)
	for _, digit := range digits {
		if res, err := call.SendDTMF(ctx, digit); err != nil || res.StatusCode != 200 {
			t.Fatalf("dtmf %s: %v, %v", digit, res, err)
		}
	}
	if err := call.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	busy, err := ua.Invite(ctx, "sip:busy@"+domain)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := busy.Result(ctx); err != nil || res.StatusCode != 486 {
		t.Fatalf("busy: %v, %v; want 486", res, err)
	}
}

// browser dials and registers a Go browser for user.
func (r *rig) browser(ctx context.Context, user string) *webua.UA {
	r.t.Helper()
	ua, err := webua.Dial(ctx, webua.Config{URL: r.ws, AoR: "sip:" + user + "@" + domain, Password: "secret", Log: r.log.Named(user)})
	if err != nil {
		r.t.Fatalf("dial %s: %v", user, err)
	}
	r.t.Cleanup(func() { ua.Close() })
	res, err := ua.Register(ctx, 300*time.Second)
	if err != nil {
		r.t.Fatalf("register %s: %v", user, err)
	}
	if res.StatusCode != 200 {
		r.t.Fatalf("register %s: got %d %s, want 200", user, res.StatusCode, res.Reason)
	}
	return ua
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitRinging waits for a 18x (a 100 Trying is hop-by-hop and not the far end).
func waitRinging(t *testing.T, ctx context.Context, call *webua.Call) {
	t.Helper()
	for {
		select {
		case res := <-call.Provisional():
			if res.StatusCode >= 180 {
				return
			}
		case <-ctx.Done():
			t.Fatal("no ringing")
		}
	}
}

func waitClosed(t *testing.T, ctx context.Context, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestLoopbackCalls(t *testing.T) {
	noLeaks(t)
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	alice := r.browser(ctx, "alice")
	binds := r.core.Bindings("sip:alice@" + domain)
	if len(binds) != 1 || strings.Contains(binds[0].Contact, ".invalid") {
		t.Fatalf("core bindings for alice = %+v, want one gateway Contact", binds)
	}

	t.Run("call out to echo, web hangs up", func(t *testing.T) {
		call := echoCall(t, ctx, alice, 25)
		for _, digit := range []string{"1", "#"} {
			res, err := call.SendDTMF(ctx, digit)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("dtmf %s: %v, %v; want 200", digit, res, err)
			}
		}
		// The echo took telephone-event: the INFOs go on as RFC 4733
		// events, in place of the browser's next audio packets.
		waitFor(t, ctx, "the core to get the digits", func() bool {
			calls := r.core.EchoCalls()
			return calls[len(calls)-1].DTMF == "1#"
		})
		if err := call.HangUp(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "core sees the call end", func() bool {
			calls := r.core.EchoCalls()
			last := calls[len(calls)-1]
			return last.State == "ended" && last.EndedBy == "remote" && last.PacketsIn >= 25
		})
	})

	t.Run("call out to echo, core hangs up", func(t *testing.T) {
		call := echoCall(t, ctx, alice, 10)
		calls := r.core.EchoCalls()
		if err := r.core.HangUpEcho(ctx, calls[len(calls)-1].CallID); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ctx, "browser gets BYE", call.Ended())
	})

	t.Run("call in, answered, web hangs up", func(t *testing.T) {
		oc, err := r.core.Call(ctx, "sip:carol@"+domain, "sip:alice@"+domain)
		if err != nil {
			t.Fatal(err)
		}
		var in *webua.Call
		select {
		case in = <-alice.Incoming():
		case <-ctx.Done():
			t.Fatal("no incoming call")
		}
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		if status, err := oc.Result(ctx); err != nil || status != 200 {
			t.Fatalf("core result = %d, %v; want 200", status, err)
		}
		waitFor(t, ctx, "audio both ways", func() bool {
			_, got := oc.Packets()
			return got >= 25 && in.Media().Received >= 25
		})
		if err := in.HangUp(ctx); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ctx, "core gets BYE", oc.Ended())
	})

	t.Run("call in, core hangs up", func(t *testing.T) {
		oc, err := r.core.Call(ctx, "sip:carol@"+domain, "sip:alice@"+domain)
		if err != nil {
			t.Fatal(err)
		}
		in := <-alice.Incoming()
		if err := in.Answer(ctx); err != nil {
			t.Fatal(err)
		}
		if status, err := oc.Result(ctx); err != nil || status != 200 {
			t.Fatalf("core result = %d, %v; want 200", status, err)
		}
		waitFor(t, ctx, "audio to the browser", func() bool { return in.Media().Received >= 10 })
		if err := oc.HangUp(ctx); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ctx, "browser gets BYE", in.Ended())
	})

	t.Run("web cancels before answer", func(t *testing.T) {
		call, err := alice.Invite(ctx, "sip:ring@"+domain)
		if err != nil {
			t.Fatal(err)
		}
		waitRinging(t, ctx, call)
		if err := call.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := call.Result(ctx)
		if err != nil || res.StatusCode != 487 {
			t.Fatalf("result = %v, %v; want 487", res, err)
		}
		waitFor(t, ctx, "core sees the cancel", func() bool {
			calls := r.core.EchoCalls()
			return calls[len(calls)-1].State == "canceled"
		})
	})

	t.Run("core cancels before answer", func(t *testing.T) {
		oc, err := r.core.Call(ctx, "sip:carol@"+domain, "sip:alice@"+domain)
		if err != nil {
			t.Fatal(err)
		}
		in := <-alice.Incoming()
		if err := in.Ring(ctx); err != nil {
			t.Fatal(err)
		}
		if err := oc.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ctx, "browser gets CANCEL", in.Ended())
		if status, _ := oc.Result(ctx); status != 487 {
			t.Fatalf("core result = %d, want 487", status)
		}
	})

	t.Run("errors map back", func(t *testing.T) {
		for _, tc := range []struct {
			target string
			want   int
		}{
			{"sip:busy@" + domain, 486},
			{"sip:nobody@" + domain, 404},
			{"sip:bob@" + domain, 480}, // known, not registered
		} {
			call, err := alice.Invite(ctx, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := call.Result(ctx)
			if err != nil || res.StatusCode != tc.want {
				t.Errorf("%s: result = %v, %v; want %d", tc.target, res, err, tc.want)
			}
		}
	})

	t.Run("websocket close unregisters at the core", func(t *testing.T) {
		bob := r.browser(ctx, "bob")
		if n := len(r.core.Bindings("sip:bob@" + domain)); n != 1 {
			t.Fatalf("bob bindings = %d, want 1", n)
		}
		bob.Close()
		waitFor(t, ctx, "binding removed at core", func() bool { return len(r.core.Bindings("sip:bob@"+domain)) == 0 })
	})

	alice.Close()
	waitFor(t, ctx, "gateway forgets alice", func() bool { return r.gw.gw.Bindings() == 0 && r.gw.gw.Calls() == 0 })
	waitFor(t, ctx, "core forgets alice", func() bool { return len(r.core.Bindings("sip:alice@"+domain)) == 0 })
}

// ipv6Addr is the address TestLoopbackIPv6 gives the loopback of its own
// network namespace: browsers (pion as Chrome) never gather ::1.
const ipv6Addr = "fd00:1::1"

// TestLoopbackIPv6: with every listener, the core and the media on one
// IPv6 address a browser registers and calls, and audio flows both ways
// (IN IP6 in both SDPs, ICE candidates and RTP over IPv6). It runs again
// inside a network namespace of its own (as root, with util-linux
// unshare), where that address is put on the loopback.
func TestLoopbackIPv6(t *testing.T) {
	if os.Getenv("IMSGATE_IPV6_NETNS") == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace with an IPv6 address")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("needs util-linux unshare")
		}
		cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run", "^TestLoopbackIPv6$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "IMSGATE_IPV6_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestLoopbackIPv6") {
			t.Fatalf("in its namespace: %v\n%s", err, out)
		}
		return
	}
	for _, args := range [][]string{{"addr", "add", ipv6Addr + "/128", "dev", "lo", "nodad"}, {"link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	// The kernel adds the address's local route from a work queue, not
	// always before ip returns: a dial before it is "network unreachable".
	for try := 0; ; try++ {
		out, _ := exec.Command("ip", "-6", "route", "show", "table", "local").Output()
		if strings.Contains(string(out), "local "+ipv6Addr+" ") {
			break
		}
		if try == 100 {
			t.Fatalf("no local route to %s in the namespace:\n%s", ipv6Addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	noLeaks(t)
	r := newRigOn(t, ipv6Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := r.browser(ctx, "alice")
	call, err := alice.Invite(ctx, "sip:echo@"+domain)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := call.Result(ctx); err != nil || res.StatusCode != 200 {
		t.Fatalf("result = %v, %v; want 200", res, err)
	} else if !strings.Contains(string(res.Body()), "IN IP6 "+ipv6Addr) {
		t.Fatalf("the browser's answer has no IPv6 address:\n%s", res.Body())
	}
	waitFor(t, ctx, "echoed audio over IPv6", func() bool { return call.Media().Echoed >= 25 })
	waitFor(t, ctx, "the core (on IPv6 only) to count the browser's audio", func() bool {
		calls := r.core.EchoCalls()
		return calls[len(calls)-1].PacketsIn >= 25
	})
	if err := call.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLoopbackForkToTwoBrowsers(t *testing.T) {
	noLeaks(t)
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	a1 := r.browser(ctx, "alice")
	a2 := r.browser(ctx, "alice")
	if n := len(r.core.Bindings("sip:alice@" + domain)); n != 2 {
		t.Fatalf("alice bindings at core = %d, want 2", n)
	}
	oc, err := r.core.Call(ctx, "sip:carol@"+domain, "sip:alice@"+domain)
	if err != nil {
		t.Fatal(err)
	}
	var in1, in2 *webua.Call
	for in1 == nil || in2 == nil {
		select {
		case in1 = <-a1.Incoming():
		case in2 = <-a2.Incoming():
		case <-ctx.Done():
			t.Fatal("both browsers should ring")
		}
	}
	if err := in2.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	if status, err := oc.Result(ctx); err != nil || status != 200 {
		t.Fatalf("core result = %d, %v", status, err)
	}
	waitClosed(t, ctx, "the other browser is cancelled", in1.Ended())
	waitFor(t, ctx, "audio to the answering browser", func() bool { return in2.Media().Received >= 10 })
	if err := oc.HangUp(ctx); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, "answering browser gets BYE", in2.Ended())
}

// noLeaks checks, after every cleanup of the test has run, that no goroutine
// the test started is left.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}
