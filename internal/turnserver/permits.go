package turnserver

import (
	"net"
	"net/netip"
	"sync"
)

// clientKey names a client's allocation by its 5-tuple, which both pion's
// PermissionHandler (the client's address; one handler per listener, so
// the server's end is known) and its events (both ends) give: the
// client's address, the server's, and whether it came over a stream (TCP
// or TLS) or UDP. Two allocations of one client on two listeners keep
// permission sets of their own.
type clientKey struct {
	addr, local netip.AddrPort
	stream      bool
}

func clientKeyOf(client, local net.Addr) clientKey {
	k := clientKey{local: unmapAddrPort(addrPortOf(local))}
	switch a := client.(type) {
	case *net.UDPAddr:
		k.addr = unmapAddrPort(a.AddrPort())
	case *net.TCPAddr:
		k.addr, k.stream = unmapAddrPort(a.AddrPort()), true
	}
	return k
}

func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// perClient bounds what one allocation holds of something pion keeps
// (its permissions' peer addresses, its channel numbers), following pion's
// events, so that a request that would add one more is refused first.
//
// pion keeps each permission and channel (and its timer) for 5 or 10
// minutes after the last refresh; a CreatePermission may carry a hundred
// XOR-PEER-ADDRESSes and a client may bind a channel to every port of a
// peer: without a bound one authenticated client could fill memory. A
// browser needs one of each per candidate address of the other side.
// What pion never made (a request that failed on a later address) takes
// no room.
type perClient[T comparable] struct {
	max int

	mu       sync.Mutex
	byClient map[clientKey]map[T]struct{}
}

func newPerClient[T comparable](max int) *perClient[T] {
	return &perClient[T]{max: max, byClient: make(map[clientKey]map[T]struct{})}
}

// permits are the peer addresses each allocation has permissions for;
// channels the channel numbers it has bound.
type (
	permits  = perClient[netip.Addr]
	channels = perClient[uint16]
)

func newPermits(max int) *permits   { return newPerClient[netip.Addr](max) }
func newChannels(max int) *channels { return newPerClient[uint16](max) }

// room says whether client may hold v: it has it already (a refresh), or
// fewer than max.
func (p *perClient[T]) room(client clientKey, v T) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.byClient[client]
	if _, ok := set[v]; ok {
		return true
	}
	return len(set) < p.max
}

func (p *perClient[T]) add(client clientKey, v T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.byClient[client]
	if set == nil {
		set = make(map[T]struct{})
		p.byClient[client] = set
	}
	set[v] = struct{}{}
}

func (p *perClient[T]) remove(client clientKey, v T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.byClient[client]
	delete(set, v)
	if len(set) == 0 {
		delete(p.byClient, client)
	}
}

func (p *perClient[T]) clients() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byClient)
}
