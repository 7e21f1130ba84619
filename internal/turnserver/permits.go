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

// permits bounds the peer addresses an allocation holds permissions for.
// pion keeps each permission (and its timer) for 5 minutes after the last
// refresh, and a CreatePermission may carry a hundred XOR-PEER-ADDRESSes:
// without a bound one authenticated client could fill memory. A browser
// needs one per candidate address of the other side.
//
// The sets follow pion's permission events, so a permission pion never
// made (a request that failed on a later address) takes no room.
type permits struct {
	max int

	mu       sync.Mutex
	byClient map[clientKey]map[netip.Addr]struct{}
}

func newPermits(max int) *permits {
	return &permits{max: max, byClient: make(map[clientKey]map[netip.Addr]struct{})}
}

// room says whether client may hold a permission for peer: it has one
// already (a refresh), or fewer than max.
func (p *permits) room(client clientKey, peer netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.byClient[client]
	if _, ok := set[peer]; ok {
		return true
	}
	return len(set) < p.max
}

func (p *permits) add(client clientKey, peer netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.byClient[client]
	if set == nil {
		set = make(map[netip.Addr]struct{})
		p.byClient[client] = set
	}
	set[peer] = struct{}{}
}

func (p *permits) remove(client clientKey, peer netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.byClient[client]
	delete(set, peer)
	if len(set) == 0 {
		delete(p.byClient, client)
	}
}

func (p *permits) clients() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byClient)
}
