// Package dnstest is a DNS server for tests: it answers from records given
// in zone-file form, and NXDOMAIN for names it has none of.
package dnstest

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Serve answers on 127.0.0.1 from records ("name ttl IN type data") until
// the test ends, and returns its host:port. A line "REFUSED name type"
// makes it refuse that question, as a server that knows only another
// record type of the name may (dnsmasq).
func Serve(t testing.TB, records ...string) string {
	t.Helper()
	zone := map[string][]dns.RR{}
	refused := map[string]bool{}
	for _, r := range records {
		if f := strings.Fields(r); len(f) == 3 && f[0] == "REFUSED" {
			refused[strings.ToLower(f[1])+" "+strings.ToUpper(f[2])] = true
			continue
		}
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		name := strings.ToLower(rr.Header().Name)
		zone[name] = append(zone[name], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		if refused[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]] {
			m.Rcode = dns.RcodeRefused
			_ = w.WriteMsg(m)
			return
		}
		rrs := zone[strings.ToLower(q.Name)]
		for _, r := range rrs {
			if r.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, r)
			}
		}
		if len(rrs) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}
