package mediabridge

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// newTableSocket is a shared socket with no UDP socket and no clock
// goroutine, for the address table alone; the test moves the clock.
func newTableSocket(sessions int) *webrtcSocket {
	return &webrtcSocket{byUfrag: map[string]*webEndpoint{}, addrs: newAddrTable(sessions)}
}

// tableEndpoint is a registered session with nothing but its ICE ufrag
// and a forwarder to count its drops.
func tableEndpoint(s *webrtcSocket, ufrag string) *webEndpoint {
	ep := &webEndpoint{sock: s, fwd: &forwarder{}, localUfrag: ufrag, remoteSeen: make(chan struct{})}
	s.register(ep)
	return ep
}

// testAddr is the i-th of many distinct browser addresses.
func testAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%50000))
}

func tableSize(s *webrtcSocket) int {
	n := 0
	s.addrs.each(func(*addrEntry) { n++ })
	return n
}

// TestAddrTableChains fills a table far beyond its buckets, so every chain
// is long, and unlinks heads, middles and tails.
func TestAddrTableChains(t *testing.T) {
	tab := newAddrTable(0)
	const n = 16 * minAddrBuckets
	entries := make([]*addrEntry, n)
	for i := range entries {
		entries[i] = &addrEntry{addr: testAddr(i)}
		tab.insert(entries[i])
	}
	for i, e := range entries {
		if i%3 == 0 {
			tab.remove(e)
		}
	}
	kept := 0
	for i, e := range entries {
		got := tab.lookup(testAddr(i))
		switch {
		case i%3 == 0 && (got != nil || e.live):
			t.Fatalf("address %d found after its removal", i)
		case i%3 != 0 && got != e:
			t.Fatalf("address %d: found %p, want %p", i, got, e)
		}
		if i%3 != 0 {
			kept++
		}
	}
	left := 0
	tab.each(func(*addrEntry) { left++ })
	if left != kept {
		t.Errorf("%d entries left, want %d", left, kept)
	}
	if tab.lookup(netip.MustParseAddrPort("[2001:db8::1]:1024")) != nil {
		t.Error("an address never added was found")
	}
}

func TestNewAddrTableSize(t *testing.T) {
	for _, tt := range []struct{ sessions, want int }{
		{0, minAddrBuckets},
		{500, 1024}, // the tests' port range
		{5000, 16384},
		{32768, maxAddrBuckets}, // every pair of 1024-65535
		{1 << 20, maxAddrBuckets},
	} {
		if got := len(newAddrTable(tt.sessions).buckets); got != tt.want {
			t.Errorf("%d sessions: %d buckets, want %d", tt.sessions, got, tt.want)
		}
	}
}

// TestLearn: what a valid check's source does to the table and to its
// session, and how addresses leave it.
func TestLearn(t *testing.T) {
	consent := int64(consentTimeout / clockTick)

	t.Run("a session keeps at most maxLearnedAddrs, the least recently heard go first", func(t *testing.T) {
		s := newTableSocket(1)
		ep := tableEndpoint(s, "one")
		media := testAddr(0)
		s.learn(media, ep)
		ep.setRemote(media, true) // the oldest, but media goes there
		for i := 1; i < maxLearnedAddrs; i++ {
			s.clock.Add(1)
			s.learn(testAddr(i), ep)
		}
		s.clock.Add(1)
		s.learn(testAddr(1), ep) // heard again: the youngest now
		for i := maxLearnedAddrs; i < maxLearnedAddrs+3; i++ {
			s.clock.Add(1)
			if !s.learn(testAddr(i), ep) {
				t.Fatalf("address %d refused", i)
			}
		}
		if len(ep.learned) != maxLearnedAddrs || tableSize(s) != maxLearnedAddrs {
			t.Fatalf("%d learned, %d in the table, want %d", len(ep.learned), tableSize(s), maxLearnedAddrs)
		}
		for i := range maxLearnedAddrs + 3 {
			evicted := i >= 2 && i <= 4
			if got := s.addrs.lookup(testAddr(i)); (got == nil) != evicted {
				t.Errorf("address %d: in the table %v, want %v", i, got != nil, !evicted)
			}
		}
		if got, ok := ep.remoteAddr(); !ok || got != media {
			t.Errorf("media goes to %v, want %v", got, media)
		}
	})

	t.Run("unregister removes the session's addresses only", func(t *testing.T) {
		s := newTableSocket(2)
		one, two := tableEndpoint(s, "one"), tableEndpoint(s, "two")
		for i := range 5 {
			s.learn(testAddr(i), one)
			s.learn(testAddr(100+i), two)
		}
		s.unregister(one)
		for i := range 5 {
			if s.addrs.lookup(testAddr(i)) != nil {
				t.Errorf("address %d of the closed session still found", i)
			}
			if e := s.addrs.lookup(testAddr(100 + i)); e == nil || e.ep != two {
				t.Errorf("address %d of the other session lost", 100+i)
			}
		}
		if s.learn(testAddr(7), one) || s.addrs.lookup(testAddr(7)) != nil {
			t.Error("a closed session learned an address")
		}
		if tableSize(s) != 5 {
			t.Errorf("%d entries, want 5", tableSize(s))
		}
	})

	t.Run("consent expiry forgets silent addresses and tells the session", func(t *testing.T) {
		s := newTableSocket(1)
		ep := tableEndpoint(s, "one")
		events := make(chan Event, 1)
		ep.onEvent = func(ev Event) { events <- ev }
		silent, heard := testAddr(1), testAddr(2)
		s.learn(silent, ep)
		ep.setRemote(silent, true)
		s.clock.Store(20)
		s.learn(heard, ep)
		s.forgetSilent(10)
		if s.addrs.lookup(silent) != nil || s.addrs.lookup(heard) == nil || len(ep.learned) != 1 {
			t.Errorf("after the sweep: silent found %v, heard found %v, %d learned",
				s.addrs.lookup(silent) != nil, s.addrs.lookup(heard) != nil, len(ep.learned))
		}
		if _, ok := ep.remoteAddr(); ok {
			t.Error("media still goes to the silent address")
		}
		select {
		case ev := <-events:
			if ev.Kind != EventConsentLost {
				t.Errorf("event %s", ev.Kind)
			}
		default:
			t.Error("the session was not told")
		}
	})

	t.Run("a live address stays its session's", func(t *testing.T) {
		s := newTableSocket(2)
		victim, spoofer := tableEndpoint(s, "victim"), tableEndpoint(s, "spoofer")
		a := testAddr(1)
		s.learn(a, victim)
		victim.setRemote(a, true)
		s.clock.Store(consent) // heard consentTimeout ago: still live
		if s.learn(a, spoofer) {
			t.Fatal("another session took a live address")
		}
		if e := s.addrs.lookup(a); e == nil || e.ep != victim || len(spoofer.learned) != 0 {
			t.Fatal("the address moved")
		}
		s.clock.Store(consent + 1) // silent past the consent timeout
		if !s.learn(a, spoofer) {
			t.Fatal("a silent address was not taken over")
		}
		if e := s.addrs.lookup(a); e == nil || e.ep != spoofer || len(victim.learned) != 0 {
			t.Fatal("the address did not move")
		}
		if _, ok := victim.remoteAddr(); ok {
			t.Error("the first session still sends to the address it lost")
		}
	})
}

// TestAddrTableReadersDuringWrites looks addresses up without a lock while
// sessions learn, evict and close (run with -race).
func TestAddrTableReadersDuringWrites(t *testing.T) {
	s := newTableSocket(8)
	const addrs = 8 * maxLearnedAddrs * 2
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		wrong atomic.Int64 // lookups that found another address's entry
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range addrs {
					if e := s.addrs.lookup(testAddr(i)); e != nil && (e.addr != testAddr(i) || e.ep == nil) {
						wrong.Add(1)
					}
				}
			}
		}()
	}
	for round := range 50 {
		var eps []*webEndpoint
		for k := range 8 {
			eps = append(eps, tableEndpoint(s, fmt.Sprintf("r%dk%d", round, k)))
		}
		for i := range addrs {
			s.clock.Add(1)
			s.learn(testAddr(i), eps[i%8])
		}
		for _, ep := range eps {
			s.unregister(ep)
		}
	}
	close(stop)
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d lookups found another address's entry", n)
	}
	if n := tableSize(s); n != 0 {
		t.Errorf("%d entries left after every session closed", n)
	}
}

// learnPerSession is how many addresses each session of the benchmarks
// has: a browser's host and server-reflexive candidates, each address
// family.
const learnPerSession = 4

// benchTable is a table of n learned addresses, learnPerSession per session.
func benchTable(n int) (*webrtcSocket, []*webEndpoint) {
	s := newTableSocket(n / learnPerSession)
	eps := make([]*webEndpoint, n/learnPerSession)
	for i := range eps {
		eps[i] = tableEndpoint(s, fmt.Sprint(i))
	}
	return s, eps
}

// BenchmarkLearn: one op learns n new addresses into an empty table (the
// table and its sessions are made off the clock); ns/learn is the cost of
// one. It should not grow with n.
func BenchmarkLearn(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s, eps := benchTable(n)
				b.StartTimer()
				for i := range n {
					s.learn(testAddr(i), eps[i/learnPerSession])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/learn")
		})
	}
}

// BenchmarkAddrLookup: the packet path's lookup of a source address in a
// table of n, every address in turn (hit), or one that is in no session
// (miss: a stranger's packet).
func BenchmarkAddrLookup(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s, eps := benchTable(n)
		for i := range n {
			s.learn(testAddr(i), eps[i/learnPerSession])
		}
		addrs := make([]netip.AddrPort, n)
		for i := range addrs {
			addrs[i] = testAddr(i)
		}
		b.Run(fmt.Sprintf("hit/N=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if s.addrs.lookup(addrs[i]) == nil {
					b.Fatal("not found")
				}
				if i++; i == n {
					i = 0
				}
			}
		})
		b.Run(fmt.Sprintf("miss/N=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			stranger := netip.MustParseAddrPort("203.0.113.9:5004")
			for b.Loop() {
				if s.addrs.lookup(stranger) != nil {
					b.Fatal("found")
				}
			}
		})
	}
}

// BenchmarkDemuxRTP: handlePacket for an RTP packet from one of n learned
// addresses, every address in turn; the sessions have no SRTP keys yet, so
// the packet stops at receiveMedia's first check. It is the
// demultiplexing and lookup every browser packet pays, without the
// syscalls and SRTP of BenchmarkSRTPToRTPRaw. "dual-stack" enters by
// handleDatagram, as an IPv6 socket's packets do.
func BenchmarkDemuxRTP(b *testing.B) {
	for _, n := range []int{1, 1000, 10000, -1} {
		name, dualStack := fmt.Sprintf("N=%d", n), n < 0
		if dualStack {
			name, n = "dual-stack/N=1", 1
		}
		b.Run(name, func(b *testing.B) {
			s, eps := benchTable(max(n, learnPerSession))
			addrs := make([]netip.AddrPort, n)
			for i := range addrs {
				addrs[i] = testAddr(i)
				s.learn(addrs[i], eps[i/learnPerSession])
			}
			pkt := g711Packet(111)
			var sc loopScratch
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if dualStack {
					s.handleDatagram(pkt, addrs[i], &sc)
				} else {
					s.handlePacket(pkt, addrs[i], &sc)
				}
				if i++; i == n {
					i = 0
				}
			}
			b.StopTimer()
			if s.unknown.Load() != 0 {
				b.Fatalf("%d unknown", s.unknown.Load())
			}
		})
	}
}
