package siplocate

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/imsgate/imsgate/internal/siplocate/dnstest"
)

func TestLocate(t *testing.T) {
	r := &Resolver{Server: dnstest.Serve(t,
		`ims.test. 300 IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp.ims.test.`,
		`ims.test. 300 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.ims.test.`,
		`ims.test. 300 IN NAPTR 10 20 "s" "SIP+D2U" "" _sip._udp.backup.ims.test.`,
		"_sip._udp.ims.test. 120 IN SRV 20 0 5060 pcscf2.ims.test.",
		"_sip._udp.ims.test. 120 IN SRV 10 0 5070 pcscf1.ims.test.",
		"_sip._udp.backup.ims.test. 120 IN SRV 10 0 5080 pcscf3.ims.test.",
		"_sip._tcp.ims.test. 120 IN SRV 10 0 5060 pcscf1.ims.test.",
		"pcscf1.ims.test. 60 IN A 192.0.2.1",
		"REFUSED pcscf1.ims.test. AAAA",
		"REFUSED pcscf3.ims.test. A",
		"pcscf2.ims.test. 60 IN A 192.0.2.2",
		"pcscf2.ims.test. 60 IN AAAA 2001:db8::2",
		"_sip._udp.backup.ims.test. 120 IN SRV 20 0 5090 pcscf4.ims.test.",
		"pcscf4.ims.test. 60 IN A 192.0.2.4",
		"plain.test. 600 IN A 198.51.100.7",
		`srvonly.test. 600 IN TXT "x"`,
		"_sips._tcp.srvonly.test. 120 IN SRV 10 0 5061 pcscf1.ims.test.",
	)}
	tests := []struct {
		domain, transport string
		want              []string
		ttl               int
	}{
		// pcscf1's AAAA is refused (its A answers); pcscf3's A is refused
		// and it has no AAAA: it is skipped, pcscf4 after it still found.
		{"ims.test", "udp", []string{"192.0.2.1:5070", "192.0.2.2:5060", "[2001:db8::2]:5060", "192.0.2.4:5090"}, 60},
		{"ims.test", "tcp", []string{"192.0.2.1:5060"}, 60},
		{"srvonly.test", "tls", []string{"192.0.2.1:5061"}, 60},
		{"plain.test", "udp", []string{"198.51.100.7:5060"}, 600},
		{"plain.test", "tls", []string{"198.51.100.7:5061"}, 600},
	}
	for _, tt := range tests {
		got, ttl, err := r.Locate(context.Background(), tt.domain, tt.transport)
		if err != nil {
			t.Errorf("%s %s: %v", tt.domain, tt.transport, err)
			continue
		}
		var addrs []string
		for _, g := range got {
			addrs = append(addrs, g.Addr.String())
		}
		if len(addrs) != len(tt.want) || int(ttl.Seconds()) != tt.ttl {
			t.Errorf("%s %s: %v (ttl %v), want %v (ttl %ds)", tt.domain, tt.transport, addrs, ttl, tt.want, tt.ttl)
			continue
		}
		for i := range addrs {
			if addrs[i] != tt.want[i] {
				t.Errorf("%s %s: %v, want %v", tt.domain, tt.transport, addrs, tt.want)
				break
			}
		}
	}
	if _, _, err := r.Locate(context.Background(), "nowhere.test", "udp"); !errors.Is(err, ErrNotFound) {
		t.Errorf("nowhere.test: %v, want ErrNotFound", err)
	}
	// A NAPTR naming only another transport: nothing for ours, no fallback
	// to the domain's addresses (§4.1).
	if _, _, err := r.Locate(context.Background(), "ims.test", "tls"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ims.test over tls: %v, want ErrNotFound", err)
	}
}

// TestWeights: within one priority a record is drawn in proportion to its
// weight; a lower priority always goes first.
func TestWeights(t *testing.T) {
	first := map[string]int{}
	for range 2000 {
		srvs := []*dns.SRV{
			{Priority: 10, Weight: 30, Target: "a."},
			{Priority: 10, Weight: 10, Target: "b."},
			{Priority: 5, Weight: 0, Target: "z."},
			{Priority: 10, Weight: 0, Target: "c."},
		}
		out := orderSRV(srvs)
		if out[0].Target != "z." || len(out) != 4 {
			t.Fatalf("order %v", out)
		}
		first[out[1].Target]++
	}
	// a: 30/40 of draws, b: 10/40, c (weight 0): only when 0 is drawn, 1/41.
	if a := first["a."]; a < 1300 || a > 1650 {
		t.Errorf("a first %d of 2000, want about 1460", a)
	}
	if c := first["c."]; c > 150 {
		t.Errorf("c (weight 0) first %d of 2000", c)
	}
}
