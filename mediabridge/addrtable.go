package mediabridge

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// maxLearnedAddrs bounds the browser addresses one session keeps. A browser
// checks from each of its candidates (host, server-reflexive, relay, per
// interface and address family), a handful; one that checks from thousands
// of ports gets its oldest silent addresses forgotten, never a bigger table.
const maxLearnedAddrs = 16

// addrTable maps the browser addresses that passed an ICE check to their
// sessions: a fixed array of buckets, each a chain of entries.
//
// The poll loop looks an address up per packet with atomic loads only: no
// lock and no allocation. Writers hold webrtcSocket.mu. Adding an address
// links one entry at the head of its chain and removing one unlinks it,
// each in O(chain), so no write copies the table or stops a reader. A
// reader may meet an entry removed meanwhile (whose chain still leads on)
// or miss one added meanwhile, as it met the old table when the table was
// copied on write; a closed session drops what still reaches it.
//
// The table never grows. Sessions are bounded by the core port pairs and
// each keeps at most maxLearnedAddrs, so two buckets per pair keep the
// chains at maxLearnedAddrs/2 even with every session at its bound, and
// under one entry when sessions keep the usual two or three addresses.
// The hash is seeded per process, so a browser cannot choose its source
// ports to fill one chain.
type addrTable struct {
	seed    [2]uint64
	mask    uint64
	buckets []atomic.Pointer[addrEntry]
}

// addrEntry is a browser address that passed an ICE check, on its bucket's
// chain and in its session's learned list.
type addrEntry struct {
	addr     netip.AddrPort
	ep       *webEndpoint
	lastSeen atomic.Int64 // webrtcSocket.clock at its last packet or check
	next     atomic.Pointer[addrEntry]
	live     bool // in the table; under webrtcSocket.mu
}

const (
	minAddrBuckets = 256
	maxAddrBuckets = 1 << 16 // 512 KiB of bucket heads: every pair of a 64k port range
)

// newAddrTable sizes the table for sessions at once: two buckets per
// session, a power of two.
func newAddrTable(sessions int) addrTable {
	n := minAddrBuckets
	for n < 2*sessions && n < maxAddrBuckets {
		n *= 2
	}
	var seed [16]byte
	_, _ = rand.Read(seed[:])
	return addrTable{
		seed:    [2]uint64{binary.LittleEndian.Uint64(seed[:8]) | 1, binary.LittleEndian.Uint64(seed[8:]) | 1},
		mask:    uint64(n - 1),
		buckets: make([]atomic.Pointer[addrEntry], n),
	}
}

// bucket is where a's chain starts. The hash is two rounds of a 64×64→128
// bit multiply folded (wyhash's mix) over the address and port; the zone is
// left out (equal addresses still hash alike).
func (t *addrTable) bucket(a netip.AddrPort) *atomic.Pointer[addrEntry] {
	ip := a.Addr().As16()
	h := mix(binary.LittleEndian.Uint64(ip[:8])^t.seed[0], binary.LittleEndian.Uint64(ip[8:])^t.seed[1])
	h = mix(h^uint64(a.Port()), t.seed[0])
	return &t.buckets[h&t.mask]
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// lookup finds a's entry; it runs per packet.
func (t *addrTable) lookup(a netip.AddrPort) *addrEntry {
	for e := t.bucket(a).Load(); e != nil; e = e.next.Load() {
		if e.addr == a {
			return e
		}
	}
	return nil
}

// insert links e, whose address is not in the table, at the head of its
// chain: readers see it whole or not at all. Under webrtcSocket.mu.
func (t *addrTable) insert(e *addrEntry) {
	b := t.bucket(e.addr)
	e.next.Store(b.Load())
	b.Store(e)
	e.live = true
}

// remove unlinks e; its own next is left as it was, so a reader standing
// on it goes on along the chain. Under webrtcSocket.mu.
func (t *addrTable) remove(e *addrEntry) {
	e.live = false
	b := t.bucket(e.addr)
	if b.Load() == e {
		b.Store(e.next.Load())
		return
	}
	for p := b.Load(); p != nil; p = p.next.Load() {
		if p.next.Load() == e {
			p.next.Store(e.next.Load())
			return
		}
	}
}

// each calls f for every entry, without the lock: an entry added or
// removed meanwhile may be missed or seen.
func (t *addrTable) each(f func(*addrEntry)) {
	for i := range t.buckets {
		for e := t.buckets[i].Load(); e != nil; e = e.next.Load() {
			f(e)
		}
	}
}
