package natcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/natlab"
)

// The tests below put natcheck behind a real Linux NAT, the lab of
// internal/natlab (client netns -> nat netns with nftables masquerade ->
// server netns; the interop tests use it too):
//
//	startHelper  the test binary re-executed in a netns (TestHelperProcess)
//	runNatcheck  natcheck -json in the client netns, its result decoded
const (
	labClientIP  = natlab.ClientIP
	labOutsideIP = natlab.OutsideIP
	labServerIP  = natlab.ServerIP
	labServerIP2 = natlab.ServerIP2
)

// natLab is internal/natlab's lab with this package's helpers.
type natLab struct{ *natlab.Lab }

func newNATLab(t *testing.T, rule string, udpTimeout int) *natLab {
	t.Helper()
	return &natLab{natlab.New(t, "natcheck", rule, udpTimeout)}
}

// requireNetns skips unless the test can make namespaces and NATs.
func requireNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// startHelper starts cmd (args after "ip netns exec ns") and, if ready is
// not empty, waits for a line of stdout containing it. The process ends
// at cleanup: its stdin is closed (the stunserver helper's signal), then
// it is killed by its pid if it has not exited within 5 s.
func startHelper(t *testing.T, ns natlab.Netns, env []string, ready string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", string(ns)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ready != "" && strings.Contains(sc.Text(), ready) {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	if ready == "" {
		return
	}
	select {
	case <-lines:
	case <-exited:
		t.Fatalf("%v exited before ready: %s", args, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("%v not ready: %s", args, stderr.String())
	}
}

// startOurServer runs stunserver on the lab's two server IPs.
func (l *natLab) startOurServer(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	startHelper(t, l.Server,
		[]string{helperEnv + "=stunserver", helperEnv + "_ARGS=" + labServerIP + ":3478\n" + labServerIP2},
		"ready", exe, "-test.run=^TestHelperProcess$")
}

// startCoturn runs coturn's turnserver on the lab's two server IPs, which
// makes it an RFC 5780 server (alternate port 3479).
func (l *natLab) startCoturn(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		t.Skipf("needs coturn's turnserver: %v", err)
	}
	dir := t.TempDir()
	startHelper(t, l.Server, nil, "", bin, "-n", "-L", labServerIP, "-L", labServerIP2,
		"--listening-port", "3478", "--no-auth", "--no-tls", "--no-dtls", "--no-cli",
		"--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(dir, "turnserver.pid"), "--db", filepath.Join(dir, "turndb"))
}

// labResult is natcheck's -json output.
type labResult struct {
	Mapped          string `json:"mapped"`
	OtherAddress    string `json:"other_address"`
	UDPBlocked      bool   `json:"udp_blocked"`
	BehindNAT       bool   `json:"behind_nat"`
	Mapping         string `json:"mapping"`
	Filtering       string `json:"filtering"`
	Hairpinning     string `json:"hairpinning"`
	BindingLifetime string `json:"binding_lifetime"`
	LifetimeDead    string `json:"binding_lifetime_dead"`
	Classic         string `json:"classic"`
	Advice          string `json:"advice"`
	Notes           []Note `json:"notes"`
}

// runNatcheck runs natcheck -json in the lab's client namespace.
func (l *natLab) runNatcheck(t *testing.T, args ...string) labResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := append([]string{"-stun", labServerIP + ":3478", "-json"}, args...)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", string(l.Client), exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=natcheck", helperEnv+"_ARGS="+strings.Join(all, "\n"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("natcheck: %v: %s", err, stderr.String())
	}
	var r labResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("natcheck output %q: %v", out, err)
	}
	t.Logf("natcheck %s: %s", strings.Join(args, " "), out)
	return r
}

// wantNAT is what a NAT rule must come out as.
type wantNAT struct {
	mapping, filtering, hairpinning, classic string
}

func (w wantNAT) check(t *testing.T, r labResult) {
	t.Helper()
	if r.UDPBlocked || !r.BehindNAT || !strings.HasPrefix(r.Mapped, labOutsideIP+":") || r.OtherAddress != labServerIP2+":3479" {
		t.Errorf("addresses: %+v", r)
	}
	if r.Mapping != w.mapping || r.Filtering != w.filtering || r.Hairpinning != w.hairpinning || r.Classic != w.classic {
		t.Errorf("got %s / %s / hairpinning %s / %q, want %s / %s / %s / %q",
			r.Mapping, r.Filtering, r.Hairpinning, r.Classic, w.mapping, w.filtering, w.hairpinning, w.classic)
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes %v", r.Notes)
	}
}

// Linux keeps the source port where it can: one mapping for every
// destination. Conntrack lets in only replies: a port-restricted cone,
// which does not hairpin without a DNAT rule of its own.
var wantMasquerade = wantNAT{"endpoint-independent", "address-and-port-dependent", "no", "port-restricted cone"}

func TestBehindLinuxNAT(t *testing.T) {
	requireNetns(t)
	for _, tc := range []struct {
		rule string
		want wantNAT
	}{
		{"masquerade", wantMasquerade},
		// A new random port for every destination: symmetric.
		{"masquerade random", wantNAT{"address-and-port-dependent", "address-and-port-dependent", "no", "symmetric"}},
		{"masquerade fully-random", wantNAT{"address-and-port-dependent", "address-and-port-dependent", "no", "symmetric"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			l := newNATLab(t, tc.rule, 0)
			l.startOurServer(t)
			tc.want.check(t, l.runNatcheck(t, "-timeout", "1s"))
		})
	}
}

func TestBindingLifetimeBehindLinuxNAT(t *testing.T) {
	requireNetns(t)
	const conntrackTimeout = 3 * time.Second
	l := newNATLab(t, "masquerade", int(conntrackTimeout/time.Second))
	l.startOurServer(t)
	r := l.runNatcheck(t, "-timeout", "1s", "-lifetime", "-lifetime-max", "8s")
	wantMasquerade.check(t, r)
	alive, err1 := time.ParseDuration(r.BindingLifetime)
	dead, err2 := time.ParseDuration(r.LifetimeDead)
	if err1 != nil || err2 != nil {
		t.Fatalf("lifetime %q, dead %q", r.BindingLifetime, r.LifetimeDead)
	}
	// The search brackets the conntrack timeout: alive at most that long
	// idle, gone after at most the next probe past it.
	if alive < conntrackTimeout-time.Second || alive > conntrackTimeout || dead <= alive || dead > 2*conntrackTimeout {
		t.Errorf("lifetime between %s and %s; conntrack times out after %s", alive, dead, conntrackTimeout)
	}
}

// TestCoturnAgreesBehindLinuxNAT asks coturn, an RFC 5780 server of
// another make, from behind the same NAT: natcheck must say the same.
func TestCoturnAgreesBehindLinuxNAT(t *testing.T) {
	requireNetns(t)
	l := newNATLab(t, "masquerade", 0)
	l.startCoturn(t)
	// coturn says nothing when it is ready; ask until it answers.
	var r labResult
	for range 20 {
		if r = l.runNatcheck(t, "-timeout", "1s"); !r.UDPBlocked {
			break
		}
	}
	wantMasquerade.check(t, r)
}
