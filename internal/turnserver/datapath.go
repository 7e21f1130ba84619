package turnserver

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/internal/rawudp"
)

// dataPath moves the datagrams of clients over UDP, the bulk of a TURN
// server's work, without pion: one loop reads the UDP listener and every
// relay of those clients (datapath_linux.go), relays ChannelData both ways
// itself, and hands everything else (STUN: Allocate, Refresh,
// CreatePermission, ChannelBind, Send and Binding) to pion through
// packetConn. pion keeps the allocations, permissions and channels; the
// data path keeps a copy of them from pion's events (hooks.go) to forward
// by. Clients over TCP and TLS keep pion's own relays: their connection has
// a goroutine already.
//
// Why: with pion's own packet path every datagram woke a goroutine (its
// listener's read loop one way, the allocation's relay loop the other),
// and the Go scheduler's idle and wake work around each cost more than the
// datagram itself (docs/TURN-BENCH.md).
type dataPath struct {
	log    *zap.Logger
	stats  *counters
	listen *rawudp.Socket
	relay  relaySpec

	// toPion queues the listener's non-ChannelData datagrams for pion;
	// when it is full they are lost, as in a full socket buffer.
	toPion chan inbound
	closed chan struct{}
	once   sync.Once
	loop   pathLoop // datapath_linux.go, datapath_other.go

	// mu guards the tables; the loop holds it for a round of reads.
	mu     sync.Mutex
	relays map[uint16]*pathRelay // by port
	chans  map[chanKey]*pathChannel
}

// relaySpec is where relays bind: RelayIP, the port range, and the
// address told to clients.
type relaySpec struct {
	ip       netip.Addr
	external netip.Addr
	min, max int
}

type inbound struct {
	b    []byte
	from netip.AddrPort
}

// chanKey is a client's channel: ChannelData names only its number.
type chanKey struct {
	client netip.AddrPort
	number uint16
}

type pathChannel struct {
	relay *pathRelay
	peer  netip.AddrPort
}

// pathRelay is a UDP client's relay socket as the loop sees it; pion sees
// it as a net.PacketConn (relayConn around pathRelayConn).
type pathRelay struct {
	sock   *rawudp.Socket
	client netip.AddrPort // zero until pion says the allocation is made
	// A copy of pion's permissions and channels of the allocation.
	perms  map[netip.Addr]struct{}
	byPeer map[netip.AddrPort]uint16
	ready  uint64 // the loop's last round it was ready in
}

// toPionQueue bounds what waits for pion: at 4 KiB a datagram at most
// 2 MiB.
const toPionQueue = 512

// maxDatagram is the longest datagram the data path reads; a longer one
// (cut to this size) is dropped. WebRTC's are under 1 300 bytes.
const maxDatagram = 4096

// channelDataHeader is ChannelData's channel number and length (RFC 8656
// §12.4).
const channelDataHeader = 4

// minChannel and maxChannel bound the channel numbers a client may bind:
// RFC 5766's range. RFC 8656 §12 keeps 0x5000-0x7FFF back (for RFC 7983
// demultiplexing, which a TURN listener does not do), but clients of RFC
// 5766 use them: coturn's own test client picks from the whole range.
const (
	minChannel = 0x4000
	maxChannel = 0x7FFF
)

func newDataPath(listen *rawudp.Socket, spec relaySpec, stats *counters, log *zap.Logger) (*dataPath, error) {
	d := &dataPath{
		log:    log,
		stats:  stats,
		listen: listen,
		relay:  spec,
		toPion: make(chan inbound, toPionQueue),
		closed: make(chan struct{}),
		relays: make(map[uint16]*pathRelay),
		chans:  make(map[chanKey]*pathChannel),
	}
	if err := d.loop.start(d); err != nil {
		return nil, err
	}
	return d, nil
}

// close stops the loop and closes the listener; relays are closed by
// their allocations (pion's).
func (d *dataPath) close() {
	d.once.Do(func() {
		close(d.closed)
		d.loop.stop(d)
	})
}

// fromClient handles a datagram to the listener: ChannelData on a bound
// channel goes to its peer, ChannelData on none is dropped (RFC 8656
// §12.6), anything else goes to pion.
func (d *dataPath) fromClient(pkt []byte, from netip.AddrPort) {
	if len(pkt) >= maxDatagram {
		return
	}
	if len(pkt) >= channelDataHeader && pkt[0]&0xc0 == 0x40 { // ChannelData: 0x4000-0x7FFF
		number := binary.BigEndian.Uint16(pkt)
		size := int(binary.BigEndian.Uint16(pkt[2:]))
		if channelDataHeader+size > len(pkt) {
			return
		}
		ch := d.chans[chanKey{client: from, number: number}]
		if ch == nil {
			return
		}
		if _, ok := ch.relay.perms[ch.peer.Addr()]; !ok {
			return // a channel relays only while its peer has a permission (§9)
		}
		if ch.relay.sock.WriteTo(pkt[channelDataHeader:channelDataHeader+size], ch.peer) == nil {
			d.stats.toPeersPackets.Add(1)
			d.stats.toPeersBytes.Add(uint64(size)) //nolint:gosec // size >= 0
		}
		return
	}
	select {
	case d.toPion <- inbound{b: append([]byte(nil), pkt...), from: from}:
	default:
	}
}

// fromPeer handles a datagram a relay received: ChannelData to the client
// when the peer has a channel, a Data indication when it has a permission,
// else nothing (RFC 8656 §11.3). out is the loop's scratch buffer.
func (d *dataPath) fromPeer(r *pathRelay, pkt []byte, from netip.AddrPort, out []byte) {
	if len(pkt) >= maxDatagram {
		return
	}
	d.stats.fromPeersPackets.Add(1)
	d.stats.fromPeersBytes.Add(uint64(len(pkt)))
	if !r.client.IsValid() {
		return
	}
	if _, ok := r.perms[from.Addr()]; !ok {
		return // no permission, no relaying, channel or not (§9)
	}
	if number, ok := r.byPeer[from]; ok {
		msg := out[:channelDataHeader+len(pkt)]
		binary.BigEndian.PutUint16(msg, number)
		binary.BigEndian.PutUint16(msg[2:], uint16(len(pkt))) //nolint:gosec // < maxDatagram
		copy(msg[channelDataHeader:], pkt)
		_ = d.listen.WriteTo(msg, r.client)
		return
	}
	// Without a channel a browser's media goes this way only until its
	// ChannelBind is answered: building the indication may allocate.
	peer := stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication),
		xorPeerAddress(peer), stun.RawAttribute{Type: stun.AttrData, Value: pkt})
	if err == nil {
		_ = d.listen.WriteTo(m.Raw, r.client)
	}
}

// xorPeerAddress adds itself as XOR-PEER-ADDRESS.
type xorPeerAddress stun.XORMappedAddress

func (a xorPeerAddress) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress(a).AddToAs(m, stun.AttrXORPeerAddress)
}

// newRelay binds a relay for a UDP client: the port asked for, or a
// random one of the range, on RelayIP.
func (d *dataPath) newRelay(network string, requested int) (*pathRelayConn, net.Addr, error) {
	if (network == "udp6") != d.relay.ip.Is6() {
		return nil, nil, errRelayFamily
	}
	var sock *rawudp.Socket
	var err error
	if requested != 0 {
		sock, err = rawudp.Listen(netip.AddrPortFrom(d.relay.ip, uint16(requested)), 0) //nolint:gosec // validated
	} else {
		span := d.relay.max - d.relay.min + 1
		for range relayRetries {
			port := d.relay.min + rand.IntN(span)                                                       //nolint:gosec // a port, not a secret
			if sock, err = rawudp.Listen(netip.AddrPortFrom(d.relay.ip, uint16(port)), 0); err == nil { //nolint:gosec // in range
				break
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	r := &pathRelay{sock: sock, perms: map[netip.Addr]struct{}{}, byPeer: map[netip.AddrPort]uint16{}}
	port := sock.LocalAddr().Port()
	d.mu.Lock()
	d.relays[port] = r
	d.mu.Unlock()
	if err := d.loop.add(d, r); err != nil {
		d.mu.Lock()
		delete(d.relays, port)
		d.mu.Unlock()
		_ = sock.Close()
		return nil, nil, err
	}
	addr := &net.UDPAddr{IP: d.relay.external.AsSlice(), Port: int(port)}
	return &pathRelayConn{d: d, r: r, closed: make(chan struct{})}, addr, nil
}

var errRelayFamily = errors.New("relay address family not served")

// removeRelay takes r out of the loop and the tables; when it returns no
// handler uses r, and its socket may close.
func (d *dataPath) removeRelay(r *pathRelay) {
	d.loop.remove(d, r)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.relays, r.sock.LocalAddr().Port())
	for peer, number := range r.byPeer {
		key := chanKey{client: r.client, number: number}
		if ch := d.chans[key]; ch != nil && ch.relay == r {
			delete(d.chans, key)
		}
		delete(r.byPeer, peer)
	}
}

// What pion's events tell the data path (hooks.go); a relay that is not
// the data path's (a TCP or TLS client's) is not in d.relays.

func (d *dataPath) allocated(relayPort uint16, client netip.AddrPort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.relays[relayPort]; r != nil {
		r.client = client
	}
}

// permitted and channel take an event only for the relay of the client
// it names: an event pion delivers late, for an allocation already gone,
// must not touch another client's relay that took the port since.
func (d *dataPath) permitted(relayPort uint16, client netip.AddrPort, peer netip.Addr, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.relays[relayPort]
	if r == nil || r.client != client {
		return
	}
	if on {
		r.perms[peer] = struct{}{}
	} else {
		delete(r.perms, peer)
	}
}

func (d *dataPath) channel(relayPort uint16, client, peer netip.AddrPort, number uint16, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.relays[relayPort]
	if r == nil || !r.client.IsValid() || r.client != client {
		return
	}
	key := chanKey{client: r.client, number: number}
	if on {
		r.byPeer[peer] = number
		d.chans[key] = &pathChannel{relay: r, peer: peer}
		return
	}
	if r.byPeer[peer] == number {
		delete(r.byPeer, peer)
	}
	if ch := d.chans[key]; ch != nil && ch.relay == r {
		delete(d.chans, key)
	}
}

// pathRelayConn is a data path relay as pion uses it: pion's relay loop
// waits in ReadFrom until the relay closes (the data path reads the
// socket), and its Send indications go out through WriteTo.
type pathRelayConn struct {
	d      *dataPath
	r      *pathRelay
	once   sync.Once
	closed chan struct{}
}

func (c *pathRelayConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *pathRelayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if err := c.r.sock.WriteToShared(p, addrPortOf(addr)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *pathRelayConn) Close() error {
	var err error
	c.once.Do(func() {
		c.d.removeRelay(c.r)
		err = c.r.sock.Close()
		close(c.closed)
	})
	return err
}

func (c *pathRelayConn) LocalAddr() net.Addr {
	return net.UDPAddrFromAddrPort(c.r.sock.LocalAddr())
}

func (c *pathRelayConn) SetDeadline(time.Time) error      { return nil }
func (c *pathRelayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pathRelayConn) SetWriteDeadline(time.Time) error { return nil }
