package natcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tests below put natcheck behind a real Linux NAT. Building blocks,
// meant to be copied for interop tests:
//
//	netns        a network namespace for one test, deleted by name at cleanup
//	newNATLab    client netns -> nat netns (nftables masquerade) -> server netns
//	startHelper  the test binary re-executed in a netns (TestHelperProcess)
//	runNatcheck  natcheck -json in the client netns, its result decoded
//
// Addresses are documentation ranges and exist only inside the lab's
// namespaces: 192.0.2.0/24 inside the NAT, 198.51.100.0/24 outside.
const (
	labClientIP  = "192.0.2.2"
	labInsideGW  = "192.0.2.1"
	labOutsideIP = "198.51.100.254" // the NAT's public address
	labServerIP  = "198.51.100.1"
	labServerIP2 = "198.51.100.2" // the STUN server's alternate IP
)

var netnsSeq atomic.Int64

// netns is a network namespace made by a test.
type netns string

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

// newNetns makes a namespace with a name of this process and test, and
// deletes it by that name when the test ends (which also removes its veth
// ends).
func newNetns(t *testing.T, role string) netns {
	t.Helper()
	name := fmt.Sprintf("natcheck-%d-%d-%s", os.Getpid(), netnsSeq.Add(1), role)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns := netns(name)
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

// ip runs ip -n ns args.
func (ns netns) ip(t *testing.T, args ...string) {
	t.Helper()
	run(t, "", "ip", append([]string{"-n", string(ns)}, args...)...)
}

// exec runs a command inside ns, stdin given.
func (ns netns) exec(t *testing.T, stdin string, args ...string) {
	t.Helper()
	run(t, stdin, "ip", append([]string{"netns", "exec", string(ns)}, args...)...)
}

func run(t *testing.T, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// natLab is a client behind a NAT in front of a server with two IPs.
type natLab struct {
	client, nat, server netns
}

// newNATLab builds the lab. rule is the nftables NAT statement on the
// outside interface ("masquerade", "masquerade random", "masquerade
// fully-random"); udpTimeout, if not 0, is the NAT's conntrack UDP timeout
// in seconds (for the binding lifetime test).
func newNATLab(t *testing.T, rule string, udpTimeout int) *natLab {
	t.Helper()
	l := &natLab{client: newNetns(t, "c"), nat: newNetns(t, "n"), server: newNetns(t, "s")}
	// Each veth is made in the NAT namespace with its peer sent straight
	// into the other one, so nothing appears in the host's namespace.
	l.nat.ip(t, "link", "add", "in0", "type", "veth", "peer", "name", "eth0", "netns", string(l.client))
	l.nat.ip(t, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", string(l.server))
	l.client.ip(t, "addr", "add", labClientIP+"/24", "dev", "eth0")
	l.client.ip(t, "link", "set", "eth0", "up")
	l.client.ip(t, "route", "add", "default", "via", labInsideGW)
	l.nat.ip(t, "addr", "add", labInsideGW+"/24", "dev", "in0")
	l.nat.ip(t, "addr", "add", labOutsideIP+"/24", "dev", "out0")
	l.nat.ip(t, "link", "set", "in0", "up")
	l.nat.ip(t, "link", "set", "out0", "up")
	l.server.ip(t, "addr", "add", labServerIP+"/24", "dev", "eth0")
	l.server.ip(t, "addr", "add", labServerIP2+"/24", "dev", "eth0")
	l.server.ip(t, "link", "set", "eth0", "up")
	l.nat.exec(t, "", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	// Conntrack does the rest: replies to a mapping come back in, and
	// anything else addressed to the NAT is for the NAT itself (which
	// has no listener), so filtering is address-and-port-dependent.
	l.nat.exec(t, fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "out0" %s
	}
}
`, rule), "nft", "-f", "-")
	if udpTimeout > 0 {
		// Per namespace; there only once conntrack is loaded (by the
		// NAT rule above).
		for _, key := range []string{"nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"} {
			l.nat.exec(t, "", "sysctl", "-q", "-w", fmt.Sprintf("net.netfilter.%s=%d", key, udpTimeout))
		}
	}
	return l
}

// startHelper starts cmd (args after "ip netns exec ns") and, if ready is
// not empty, waits for a line of stdout containing it. The process ends
// at cleanup: its stdin is closed (the stunserver helper's signal), then
// it is killed by its pid if it has not exited within 5 s.
func startHelper(t *testing.T, ns netns, env []string, ready string, args ...string) {
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
	startHelper(t, l.server,
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
	startHelper(t, l.server, nil, "", bin, "-n", "-L", labServerIP, "-L", labServerIP2,
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
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", string(l.client), exe, "-test.run=^TestHelperProcess$")
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
