//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/natlab"
)

// A NAT lab for the STUN server and natcheck tests with real peers: the
// building blocks of internal/natcheck/nat_linux_test.go, with the gateway
// binary, coturn and stun-client in the namespaces instead of the test
// binary. The suite's own namespace stays as it is: the lab's namespaces
// are made beside it, and their veths are created in one lab namespace
// with the peer sent straight into another.
//
// Addresses are documentation ranges that exist only in the lab:
// 192.0.2.0/24 inside the NAT, 198.51.100.0/24 outside.
const (
	labClientIP  = natlab.ClientIP
	labOutsideIP = natlab.OutsideIP
	labServerIP  = natlab.ServerIP
	labServerIP2 = natlab.ServerIP2 // stun.alternate_ip
	labSTUNPort  = 3478             // the alternate port is 3479 (gateway default, coturn's own)
	toolTimeout  = time.Minute      // one run of a STUN client
)

type netns = natlab.Netns

// requireTools skips unless every tool is installed (.ci/run installs them).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// requireNATLab skips unless the test can build a NAT lab: root (for
// network namespaces) and the tools it runs there.
func requireNATLab(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	requireTools(t, append([]string{"ip", "nft", "ss"}, tools...)...)
}

// natLab is a client behind a Linux NAT in front of a server with two IPs.
type natLab struct{ *natlab.Lab }

func newNATLab(t *testing.T, rule string) *natLab {
	t.Helper()
	l := &natLab{natlab.New(t, "imsgate-natlab", rule, 0)}
	t.Logf("NAT lab: %s (%s) -> %s [nft %q] %s -> %s (%s, %s)",
		l.Client, labClientIP, l.NAT, rule, labOutsideIP, l.Server, labServerIP, labServerIP2)
	return l
}

// serverAddrs are the four RFC 5780 transport addresses of the lab's
// STUN server.
func serverAddrs() []string {
	var out []string
	for _, ip := range []string{labServerIP, labServerIP2} {
		for _, port := range []int{labSTUNPort, labSTUNPort + 1} {
			out = append(out, net.JoinHostPort(ip, strconv.Itoa(port)))
		}
	}
	return out
}

// startGateway runs the gateway binary in the server namespace with its
// STUN server on the lab's two IPs; demo core and everything else on that
// namespace's loopback.
func (l *natLab) startGateway(t *testing.T) *proc {
	t.Helper()
	cfg := filepath.Join(artifactDir(t), "imsgate.yaml")
	if err := os.WriteFile(cfg, []byte(stunGatewayConfig(net.JoinHostPort(labServerIP, strconv.Itoa(labSTUNPort)), labServerIP2)), 0o644); err != nil {
		t.Fatalf("write gateway config: %v", err)
	}
	// Registered before the process's own cleanup: runs after it stopped.
	var p *proc
	t.Cleanup(func() {
		if p != nil {
			checkGatewayLog(t, p.log())
		}
	})
	p = startProc(t, "imsgate", procOptions{dir: repoRoot()}, l.Server.Argv(gatewayBin, "-config", cfg)...)
	if err := p.waitLog(`imsgate ready`, startTimeout); err != nil {
		failGateway(t, p, "imsgate in %s: %v", l.Server, err)
	}
	if err := waitUDPBoundIn(l.Server, startTimeout, serverAddrs()...); err != nil {
		failGateway(t, p, "imsgate: %v", err)
	}
	return p
}

// startCoturn runs coturn's turnserver in the server namespace on the two
// IPs, which makes it an RFC 5780 server (alternate port 3479).
func (l *natLab) startCoturn(t *testing.T) *proc {
	t.Helper()
	dir := t.TempDir()
	p := startProc(t, "turnserver", procOptions{dir: dir}, l.Server.Argv("turnserver", "-n",
		"-L", labServerIP, "-L", labServerIP2, "--listening-port", strconv.Itoa(labSTUNPort),
		"--no-auth", "--no-tls", "--no-dtls", "--no-cli", "--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(dir, "turnserver.pid"), "--db", filepath.Join(dir, "turndb"))...)
	// coturn logs nothing when it is ready; its sockets say so.
	if err := waitUDPBoundIn(l.Server, startTimeout, serverAddrs()...); err != nil {
		t.Fatalf("turnserver: %v\n%s", err, tail(p.log(), 40))
	}
	return p
}

// stunGatewayConfig is the gateway on loopback with its demo core, and
// its STUN server at listen with alternate IP alt.
func stunGatewayConfig(listen, alt string) string {
	return fmt.Sprintf(`log:
  level: debug
upstream:
  proxy: sip:127.0.0.1:5090;transport=udp
  domain: imsgate.test
demo:
  enabled: true
  listen: 127.0.0.1:5090
stun:
  listen: %s
  alternate_ip: %s
`, listen, alt)
}

// waitUDPBoundIn polls ss in ns until every addr has a UDP socket bound.
func waitUDPBoundIn(ns netns, timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	argv := ns.Argv("ss", "-Hlun")
	bound := make([]*regexp.Regexp, len(addrs))
	for i, a := range addrs {
		bound[i] = regexp.MustCompile(`\s` + regexp.QuoteMeta(a) + `\s`)
	}
	for {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ss in %s: %w: %s", ns, err, out)
		}
		var missing []string
		for i, a := range addrs {
			if !bound[i].Match(out) {
				missing = append(missing, a)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("udp %v in %s: %w within %s", missing, ns, errNotBound, timeout)
		}
		<-tick.C
	}
}

// freePortPair is a port p with p and p+1 free for UDP and TCP on every
// ip (what an RFC 5780 server binds), asked of the kernel.
func freePortPair(t *testing.T, ips ...string) int {
	t.Helper()
	for range 100 {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		free := port < 65535
		for _, ip := range ips {
			for _, p := range []int{port, port + 1} {
				a := net.JoinHostPort(ip, strconv.Itoa(p))
				free = free && !inUse("udp", a) && !inUse("tcp", a)
			}
		}
		if free {
			return port
		}
	}
	t.Fatalf("no free port pair on %v", ips)
	return 0
}

// toolRun is one finished run of a command-line tool.
type toolRun struct {
	stdout, stderr string
	err            error // the exit status; nil for 0
	dur            time.Duration
}

// output is stdout then stderr, what a person would have read.
func (r toolRun) output() string { return r.stdout + r.stderr }

// runTool runs argv to its end within toolTimeout, its output kept in
// artifacts/<test>/<name>.log. A tool not ending in time fails the test.
func runTool(t *testing.T, name string, argv ...string) toolRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := toolRun{stdout: stdout.String(), stderr: stderr.String(), err: err, dur: time.Since(start)}
	log := fmt.Sprintf("$ %s\n# exit: %v, %s\n%s%s", strings.Join(argv, " "), err, r.dur.Round(time.Millisecond), r.stdout, r.stderr)
	if werr := os.WriteFile(filepath.Join(artifactDir(t), name+".log"), []byte(log), 0o644); werr != nil {
		t.Errorf("write %s log: %v", name, werr)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not end within %s:\n%s", name, toolTimeout, log)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s: %v", name, err)
	}
	t.Logf("%s ran %s (exit status %d)", name, r.dur.Round(time.Millisecond), cmd.ProcessState.ExitCode())
	return r
}

// discovery is what coturn's turnutils_natdiscovery printed: its verdict
// lines, in natcheck's words, and the addresses of each response.
type discovery struct {
	mapping, filtering string // "endpoint-independent", ...; "" when not printed
	verdicts           []string
	responses          []discoveryResponse
	timeouts           int // "STUN receive timeout.." lines: answers that never came
}

type discoveryResponse struct {
	origin, other, reflexive string
}

var (
	discoveryVerdict   = regexp.MustCompile(`(?m)^(?:No NAT! .*|NAT with (Endpoint Independent|Address Dependent|Address and Port Dependent) (Mapping|Filtering)!)$`)
	discoveryOrigin    = regexp.MustCompile(`Response origin: : (\S+)`)
	discoveryOther     = regexp.MustCompile(`Other addr: : (\S+)`)
	discoveryReflexive = regexp.MustCompile(`UDP reflexive addr: (\S+)`)
)

// runNATDiscovery runs turnutils_natdiscovery -m -f (mapping and
// filtering, RFC 5780 sections 4.3 and 4.4) with args (the server last).
func runNATDiscovery(t *testing.T, name string, argv ...string) discovery {
	t.Helper()
	r := runTool(t, name, argv...)
	out := r.output()
	if r.err != nil {
		t.Fatalf("%s: %v\n%s", name, r.err, out)
	}
	var d discovery
	for _, m := range discoveryVerdict.FindAllStringSubmatch(out, -1) {
		d.verdicts = append(d.verdicts, m[0])
		behaviour := strings.ReplaceAll(strings.ToLower(m[1]), " ", "-")
		switch m[2] {
		case "Mapping":
			if d.mapping != "" {
				t.Errorf("%s: a second mapping verdict %q", name, m[0])
			}
			d.mapping = behaviour
		case "Filtering":
			if d.filtering != "" {
				t.Errorf("%s: a second filtering verdict %q", name, m[0])
			}
			d.filtering = behaviour
		}
	}
	for _, block := range strings.Split(out, "RFC 5780 response ")[1:] {
		var resp discoveryResponse
		if m := discoveryOrigin.FindStringSubmatch(block); m != nil {
			resp.origin = m[1]
		}
		if m := discoveryOther.FindStringSubmatch(block); m != nil {
			resp.other = m[1]
		}
		if m := discoveryReflexive.FindStringSubmatch(block); m != nil {
			resp.reflexive = m[1]
		}
		d.responses = append(d.responses, resp)
	}
	d.timeouts = strings.Count(out, "STUN receive timeout")
	for i, resp := range d.responses {
		t.Logf("%s response %d: origin %s, other address %s, reflexive %s", name, i+1, resp.origin, resp.other, resp.reflexive)
	}
	t.Logf("%s verdicts (%d answers not received): %s", name, d.timeouts, strings.Join(d.verdicts, " | "))
	if d.mapping == "" || d.filtering == "" {
		t.Fatalf("%s printed no mapping or no filtering verdict:\n%s", name, out)
	}
	return d
}

// natcheckResult is imsgate natcheck's -json output.
type natcheckResult struct {
	Mapped       string `json:"mapped"`
	OtherAddress string `json:"other_address"`
	UDPBlocked   bool   `json:"udp_blocked"`
	BehindNAT    bool   `json:"behind_nat"`
	Mapping      string `json:"mapping"`
	Filtering    string `json:"filtering"`
	Hairpinning  string `json:"hairpinning"`
	Classic      string `json:"classic"`
	Advice       string `json:"advice"`
	Notes        []struct {
		Test   string `json:"test"`
		Reason string `json:"reason"`
	} `json:"notes"`
}

// runNatcheck runs the gateway binary's natcheck -json in ns against the
// lab's server and logs its JSON.
func runNatcheck(t *testing.T, name string, ns netns) natcheckResult {
	t.Helper()
	r := runTool(t, name, ns.Argv(gatewayBin, "natcheck", "-json", "-stun", net.JoinHostPort(labServerIP, strconv.Itoa(labSTUNPort)))...)
	if r.err != nil {
		t.Fatalf("%s: %v\n%s", name, r.err, r.output())
	}
	var res natcheckResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%s output %q: %v", name, r.stdout, err)
	}
	if r.stderr != "" {
		t.Errorf("%s wrote to stderr (a race report?):\n%s", name, r.stderr)
	}
	t.Logf("%s: %s", name, compactJSON(r.stdout))
	return res
}

func compactJSON(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}

// stunAnswers counts the gateway's logged STUN answers ("stun message",
// action answer) by the role they were sent from: primary, alt-port,
// alt-ip, alt-ip-alt-port.
func stunAnswers(gw *proc) map[string]int {
	n := map[string]int{}
	for _, f := range gatewayLogged(gw, "stun message") {
		if f["action"] == "answer" {
			n[fmt.Sprint(f["from"])]++
		}
	}
	return n
}
