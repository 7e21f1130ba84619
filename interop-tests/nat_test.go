//go:build interop

package interop

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The gateway's STUN server (stun.*, RFC 8489 with RFC 5780 behaviour
// discovery and RFC 3489 answers) and imsgate natcheck against clients and
// a server of other makes: stun-client 0.97 (RFC 3489), coturn's
// turnutils_natdiscovery (RFC 5780) and coturn's turnserver, on loopback
// and behind Linux NATs built of network namespaces and nftables.

// TestSTUNClassicClient: the gateway binary serves STUN on a free port P
// of 127.0.0.1 with alternate IP 127.0.0.2. Debian's RFC 3489 client sends
// from ports S and S+1 and must say "Primary: Open", with each answer from
// the address its CHANGE-REQUEST asked for and CHANGED-ADDRESS the other
// IP and port; coturn's RFC 5780 client finds endpoint-independent mapping
// and filtering, with the answer to "change IP and port" from 127.0.0.2:P+1.
func TestSTUNClassicClient(t *testing.T) {
	requireTools(t, "stun", "turnutils_natdiscovery")
	port := freePortPair(t, "127.0.0.1", "127.0.0.2")
	src := freePortPair(t, "127.0.0.1")
	at := func(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
	primary, altIP, altPort, altBoth := at("127.0.0.1", port), at("127.0.0.2", port), at("127.0.0.1", port+1), at("127.0.0.2", port+1)
	gw := startGateway(t, stunGatewayConfig(primary, "127.0.0.2"), repoRoot())
	for _, a := range []string{primary, altIP, altPort, altBoth} {
		if err := waitBound("udp", a, startTimeout); err != nil {
			failGateway(t, gw, "stun server: %v", err)
		}
	}

	t.Run("stun-client", func(t *testing.T) {
		// Its exit status is the NAT type's bits, not success.
		r := runTool(t, "stun-client", "stun", primary, "-v", "-p", strconv.Itoa(src))
		c := parseClassic(r.output())
		t.Logf("stun-client: %s; %s", c.primary, strings.Join(c.flags, ", "))
		for _, id := range c.ids() {
			a := c.answers[id]
			t.Logf("stun-client answer id=%d: MappedAddress %s SourceAddress %s ChangedAddress %s", id, a.mapped, a.source, a.changed)
		}
		if c.primary != "Open" {
			t.Errorf("stun-client says Primary: %q, want Open", c.primary)
		}
		// RFC 3489 section 10.1: test I plain, test II change IP, test
		// III change port (from S+1), then test I again to the changed
		// address. The gateway answers from where each request asked,
		// and names as changed address the other IP and port of the
		// address the request came in on.
		for _, w := range []struct {
			id   int
			test string
			want classicAnswer
		}{
			{1, "test I", classicAnswer{at("127.0.0.1", src), primary, altBoth}},
			{2, "test II (change IP)", classicAnswer{at("127.0.0.1", src+1), altIP, altBoth}},
			{3, "test III (change port)", classicAnswer{at("127.0.0.1", src+1), altPort, altBoth}},
			{10, "test I to the changed IP", classicAnswer{at("127.0.0.1", src), altIP, altPort}},
		} {
			if got, ok := c.answers[w.id]; !ok || got != w.want {
				t.Errorf("%s (id=%d): got %+v (answered %v), want %+v", w.test, w.id, got, ok, w.want)
			}
		}
		if t.Failed() {
			t.Logf("stun-client output:\n%s", r.output())
		}
	})

	t.Run("natdiscovery", func(t *testing.T) {
		d := runNATDiscovery(t, "natdiscovery", "turnutils_natdiscovery", "-m", "-f", "-p", strconv.Itoa(port), "127.0.0.1")
		if d.mapping != "endpoint-independent" || d.filtering != "endpoint-independent" {
			t.Errorf("natdiscovery: mapping %s, filtering %s; on loopback both must be endpoint-independent", d.mapping, d.filtering)
		}
		origins := map[string]bool{}
		for _, resp := range d.responses {
			origins[resp.origin] = true
			if host, _, _ := net.SplitHostPort(resp.reflexive); host != "127.0.0.1" {
				t.Errorf("reflexive address %q: no NAT on loopback", resp.reflexive)
			}
		}
		if len(d.responses) == 0 || d.responses[0].origin != primary || d.responses[0].other != altBoth {
			t.Errorf("first response %+v: want origin %s, other address %s", d.responses, primary, altBoth)
		}
		for _, a := range []string{primary, altIP, altBoth} {
			if !origins[a] {
				t.Errorf("no response came from %s (mapping test II: %s; filtering test II: %s)", a, altIP, altBoth)
			}
		}
	})
	t.Logf("gateway's STUN answers by source: %v", stunAnswers(gw))
}

// TestNATBehaviourDiscovery: behind two Linux NATs, the gateway binary's
// STUN server in the server namespace, coturn's natdiscovery and imsgate
// natcheck in the client namespace find the mapping and filtering the NAT
// has (and natcheck its classic name); then coturn's turnserver in the
// gateway's place gives natcheck the same answer.
func TestNATBehaviourDiscovery(t *testing.T) {
	requireNATLab(t, "turnutils_natdiscovery", "turnserver")
	for _, tc := range []struct {
		rule string
		want natVerdict
	}{
		// Linux keeps the source port where it can: one mapping for
		// every destination; conntrack lets in only replies.
		{"masquerade", natVerdict{"endpoint-independent", "address-and-port-dependent", "port-restricted cone"}},
		// A new random port for every destination.
		{"masquerade fully-random", natVerdict{"address-and-port-dependent", "address-and-port-dependent", "symmetric"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			lab := newNATLab(t, tc.rule)
			t.Run("imsgate", func(t *testing.T) {
				gw := lab.startGateway(t)
				d := runNATDiscovery(t, "natdiscovery", lab.Client.Argv("turnutils_natdiscovery", "-m", "-f", labServerIP)...)
				tc.want.checkDiscovery(t, "natdiscovery", d)
				tc.want.checkNatcheck(t, runNatcheck(t, "natcheck", lab.Client))
				// Filtering is the NAT's doing: the gateway did send the
				// answers to "change IP and port" that never arrived.
				answers := stunAnswers(gw)
				t.Logf("gateway's STUN answers by source: %v", answers)
				if answers["alt-ip-alt-port"] < 2 {
					t.Errorf("the gateway answered %d requests from its alternate IP and port; want natdiscovery's and natcheck's filtering test II", answers["alt-ip-alt-port"])
				}
				if t.Failed() {
					t.Logf("imsgate log (tail):\n%s", tail(gw.log(), 40))
				}
			})
			t.Run("coturn", func(t *testing.T) {
				lab.startCoturn(t)
				d := runNATDiscovery(t, "natdiscovery", lab.Client.Argv("turnutils_natdiscovery", "-m", "-f", labServerIP)...)
				tc.want.checkDiscovery(t, "natdiscovery", d)
				tc.want.checkNatcheck(t, runNatcheck(t, "natcheck", lab.Client))
			})
		})
	}
}

// natVerdict is what a NAT must come out as, in natcheck's words.
type natVerdict struct {
	mapping, filtering, classic string
}

func (w natVerdict) checkDiscovery(t *testing.T, name string, d discovery) {
	t.Helper()
	if d.mapping != w.mapping || d.filtering != w.filtering {
		t.Errorf("%s: mapping %s, filtering %s; want %s, %s", name, d.mapping, d.filtering, w.mapping, w.filtering)
	}
	for _, resp := range d.responses {
		if !strings.HasPrefix(resp.reflexive, labOutsideIP+":") {
			t.Errorf("%s: reflexive address %s is not the NAT's %s", name, resp.reflexive, labOutsideIP)
		}
	}
}

func (w natVerdict) checkNatcheck(t *testing.T, r natcheckResult) {
	t.Helper()
	if r.UDPBlocked || !r.BehindNAT || !strings.HasPrefix(r.Mapped, labOutsideIP+":") || r.OtherAddress != net.JoinHostPort(labServerIP2, strconv.Itoa(labSTUNPort+1)) {
		t.Errorf("natcheck addresses: %+v; want mapped on %s, other address %s:%d", r, labOutsideIP, labServerIP2, labSTUNPort+1)
	}
	// Linux NAT does not hairpin without a DNAT rule of its own.
	if r.Mapping != w.mapping || r.Filtering != w.filtering || r.Classic != w.classic || r.Hairpinning != "no" {
		t.Errorf("natcheck: %s / %s / hairpinning %s / %q; want %s / %s / no / %q",
			r.Mapping, r.Filtering, r.Hairpinning, r.Classic, w.mapping, w.filtering, w.classic)
	}
	if len(r.Notes) != 0 {
		t.Errorf("natcheck notes: %+v", r.Notes)
	}
}

// classicRun is what stun-client -v printed: the attributes of each
// answer by the id of the request (1: test I, 2: test II, 3: test III,
// 10: test I to the changed address), its flags and its verdict.
type classicRun struct {
	answers map[int]classicAnswer
	flags   []string // "test I = 1", "is nat  = 0", ...
	primary string   // after "Primary: "
}

type classicAnswer struct {
	mapped, source, changed string
}

var (
	classicAttr = regexp.MustCompile(`^(MappedAddress|SourceAddress|ChangedAddress) = (\S+)$`)
	classicEnd  = regexp.MustCompile(`^Received message of type 257 +id=(\d+)$`)
	classicFlag = regexp.MustCompile(`^(test I+(?:\(2\))?|is nat|mapped IP same|hairpin|preserver port) += \d+$`)
)

func parseClassic(out string) classicRun {
	c := classicRun{answers: map[int]classicAnswer{}}
	var cur classicAnswer
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if m := classicAttr.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "MappedAddress":
				cur.mapped = m[2]
			case "SourceAddress":
				cur.source = m[2]
			case "ChangedAddress":
				cur.changed = m[2]
			}
		} else if m := classicEnd.FindStringSubmatch(line); m != nil {
			id, _ := strconv.Atoi(m[1])
			c.answers[id] = cur
			cur = classicAnswer{}
		} else if classicFlag.MatchString(line) {
			c.flags = append(c.flags, strings.Join(strings.Fields(line), " "))
		} else if v, ok := strings.CutPrefix(line, "Primary:"); ok {
			c.primary = strings.TrimSpace(v)
		}
	}
	return c
}

func (c classicRun) ids() []int { return slices.Sorted(maps.Keys(c.answers)) }
