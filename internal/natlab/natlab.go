// Package natlab builds, for tests, a client behind a Linux NAT in front of
// a server with two addresses, out of network namespaces and nftables
// (root, ip and nft needed). Nothing appears in the host's namespace; every
// namespace is deleted at the test's cleanup. Imported by tests only.
package natlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The lab's addresses: documentation ranges, existing only inside it.
const (
	ClientIP  = "192.0.2.2"
	InsideGW  = "192.0.2.1"
	OutsideIP = "198.51.100.254" // the NAT's public address
	ServerIP  = "198.51.100.1"
	ServerIP2 = "198.51.100.2" // a STUN server's alternate IP
)

var seq atomic.Int64

// Netns is a network namespace by name.
type Netns string

// NewNetns makes a namespace named prefix-pid-seq-role with lo up, deleted
// at cleanup.
func NewNetns(t testing.TB, prefix, role string) Netns {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d-%s", prefix, os.Getpid(), seq.Add(1), role)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns := Netns(name)
	ns.IP(t, "link", "set", "lo", "up")
	return ns
}

// IP runs ip -n ns args.
func (ns Netns) IP(t testing.TB, args ...string) {
	t.Helper()
	Run(t, "", "ip", append([]string{"-n", string(ns)}, args...)...)
}

// Exec runs a command inside ns, stdin given.
func (ns Netns) Exec(t testing.TB, stdin string, args ...string) {
	t.Helper()
	argv := ns.Argv(args...)
	Run(t, stdin, argv[0], argv[1:]...)
}

// Argv is the command line that runs argv inside ns.
func (ns Netns) Argv(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", string(ns)}, argv...)
}

// Run runs a command to its end (30 s at most), failing the test if it fails.
func Run(t testing.TB, stdin, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Lab is a client behind a NAT in front of a server with two IPs.
type Lab struct {
	Client, NAT, Server Netns
}

// New builds the lab, its namespaces named after prefix. rule is the
// nftables NAT statement on the outside interface ("masquerade",
// "masquerade random", "masquerade fully-random"); udpTimeout, if not 0,
// is the NAT's conntrack UDP timeout in seconds (for binding lifetimes).
func New(t testing.TB, prefix, rule string, udpTimeout int) *Lab {
	t.Helper()
	l := &Lab{Client: NewNetns(t, prefix, "c"), NAT: NewNetns(t, prefix, "n"), Server: NewNetns(t, prefix, "s")}
	// Each veth is made in the NAT namespace with its peer sent straight
	// into the other one, so nothing appears in the host's namespace.
	l.NAT.IP(t, "link", "add", "in0", "type", "veth", "peer", "name", "eth0", "netns", string(l.Client))
	l.NAT.IP(t, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", string(l.Server))
	l.Client.IP(t, "addr", "add", ClientIP+"/24", "dev", "eth0")
	l.Client.IP(t, "link", "set", "eth0", "up")
	l.Client.IP(t, "route", "add", "default", "via", InsideGW)
	l.NAT.IP(t, "addr", "add", InsideGW+"/24", "dev", "in0")
	l.NAT.IP(t, "addr", "add", OutsideIP+"/24", "dev", "out0")
	l.NAT.IP(t, "link", "set", "in0", "up")
	l.NAT.IP(t, "link", "set", "out0", "up")
	l.Server.IP(t, "addr", "add", ServerIP+"/24", "dev", "eth0")
	l.Server.IP(t, "addr", "add", ServerIP2+"/24", "dev", "eth0")
	l.Server.IP(t, "link", "set", "eth0", "up")
	l.NAT.Exec(t, "", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	// Conntrack lets in replies to a mapping only; anything else sent to
	// the NAT's address is for the NAT itself, which has no listener:
	// address-and-port-dependent filtering.
	l.NAT.Exec(t, fmt.Sprintf(`table ip nat {
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
			l.NAT.Exec(t, "", "sysctl", "-q", "-w", fmt.Sprintf("net.netfilter.%s=%d", key, udpTimeout))
		}
	}
	return l
}
