package turnserver

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/internal/rawudp"
)

// TestDataPath: what a client over UDP (the data path) and one over TCP
// (pion's packet path) see of a relay is the same. No permission: the
// peer's datagram is dropped. A permission: a Data indication. A channel:
// ChannelData both ways, nothing on a channel never bound, and after the
// allocation is gone, nothing at all.
func TestDataPath(t *testing.T) {
	r := newRig(t, nil, nil)
	for _, tr := range []Transport{TransportUDP, TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			c := r.raw(tr, "alice", "alice-pass")
			res := c.request(stun.MethodAllocate, udpTransport)
			var relayed stun.XORMappedAddress
			if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
				t.Fatalf("allocate: %v %d: %v", res.Type, errorCode(res), err)
			}
			relayAddr := &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}
			peer := r.peer()
			peerAddr4 := peer.LocalAddr().(*net.UDPAddr)
			send := func(p string) {
				t.Helper()
				if _, err := peer.WriteTo([]byte(p), relayAddr); err != nil {
					t.Fatal(err)
				}
			}

			send("before any permission")
			if got := c.next(200 * time.Millisecond); got != nil {
				t.Fatalf("without a permission the client got % x", got)
			}

			if res := c.request(stun.MethodCreatePermission, peerAddr{"127.0.0.1", peerAddr4.Port}); res.Type.Class != stun.ClassSuccessResponse {
				t.Fatalf("CreatePermission: %v %d", res.Type, errorCode(res))
			}
			send("indicated")
			ind := &stun.Message{Raw: c.next(5 * time.Second)}
			if err := ind.Decode(); err != nil || ind.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
				t.Fatalf("want a Data indication, got % x (%v)", ind.Raw, err)
			}
			var from stun.XORMappedAddress
			data, _ := ind.Get(stun.AttrData)
			if err := from.GetFromAs(ind, stun.AttrXORPeerAddress); err != nil || from.Port != peerAddr4.Port || string(data) != "indicated" {
				t.Errorf("Data indication from %v (%v) with %q", from, err, data)
			}

			if res := c.request(stun.MethodChannelBind, channel(0x4001), peerAddr{"127.0.0.1", peerAddr4.Port}); res.Type.Class != stun.ClassSuccessResponse {
				t.Fatalf("ChannelBind: %v %d", res.Type, errorCode(res))
			}
			c.sendChannelData(0x4001, []byte("to the peer"))
			if got, src := readPeer(t, peer); string(got) != "to the peer" || src.Port != relayed.Port {
				t.Errorf("peer got %q from %v, want from the relay %v", got, src, relayAddr)
			}
			send("to the client")
			got := c.next(5 * time.Second)
			if len(got) < channelDataHeader || binary.BigEndian.Uint16(got) != 0x4001 ||
				!bytes.Equal(got[channelDataHeader:channelDataHeader+int(binary.BigEndian.Uint16(got[2:]))], []byte("to the client")) {
				t.Errorf("want ChannelData 0x4001 \"to the client\", got % x", got)
			}

			c.sendChannelData(0x4002, []byte("unbound"))
			if got, _ := readPeerWithin(peer, 200*time.Millisecond); got != nil {
				t.Errorf("ChannelData on an unbound channel reached the peer: %q", got)
			}

			if res := c.request(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}); res.Type.Class != stun.ClassSuccessResponse {
				t.Fatalf("Refresh 0: %v %d", res.Type, errorCode(res))
			}
			c.sendChannelData(0x4001, []byte("after the end"))
			if got, _ := readPeerWithin(peer, 200*time.Millisecond); got != nil {
				t.Errorf("ChannelData after the allocation ended reached the peer: %q", got)
			}
		})
	}
	eventually(t, "the data path's tables empty", func() bool {
		d := r.srv.path
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.relays) == 0 && len(d.chans) == 0
	})
}

// next is the next datagram or frame the server sends the client that is
// not an answer to a request, or nil after wait.
func (c *rawClient) next(wait time.Duration) []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1600)
	n, _, err := c.conn.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return append([]byte(nil), buf[:n]...)
}

// sendChannelData sends one ChannelData message, padded to four bytes (a
// stream needs it, a datagram allows it).
func (c *rawClient) sendChannelData(number uint16, data []byte) {
	c.t.Helper()
	msg := make([]byte, channelDataHeader+(len(data)+3)&^3)
	binary.BigEndian.PutUint16(msg, number)
	binary.BigEndian.PutUint16(msg[2:], uint16(len(data))) //nolint:gosec // short
	copy(msg[channelDataHeader:], data)
	if _, err := c.conn.WriteTo(msg, c.server); err != nil {
		c.t.Fatal(err)
	}
}

func readPeer(t *testing.T, peer net.PacketConn) ([]byte, *net.UDPAddr) {
	t.Helper()
	got, from := readPeerWithin(peer, 5*time.Second)
	if got == nil {
		t.Fatal("the peer got nothing")
	}
	return got, from
}

func readPeerWithin(peer net.PacketConn, wait time.Duration) ([]byte, *net.UDPAddr) {
	_ = peer.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1600)
	n, from, err := peer.ReadFrom(buf)
	if err != nil {
		return nil, nil
	}
	return buf[:n], from.(*net.UDPAddr)
}

// TestNoPermissionNoRelay: a channel whose peer's permission is gone
// relays nothing (RFC 8656 §9); once it is back, the channel relays.
func TestNoPermissionNoRelay(t *testing.T) {
	listen, err := rawudp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close()
	relaySock, err := rawudp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer relaySock.Close()
	client, peer := netip.MustParseAddrPort("127.0.0.1:9"), netip.MustParseAddrPort("127.0.0.1:9")
	r := &pathRelay{sock: relaySock, client: client, perms: map[netip.Addr]struct{}{}, byPeer: map[netip.AddrPort]uint16{peer: 0x4001}}
	var st counters
	d := &dataPath{log: zap.NewNop(), stats: &st, listen: listen, toPion: make(chan inbound, 1),
		chans: map[chanKey]*pathChannel{{client: client, number: 0x4001}: {relay: r, peer: peer}}}
	d.fromClient([]byte{0x40, 0x01, 0, 1, 'x'}, client)
	if n := st.toPeersPackets.Load(); n != 0 {
		t.Errorf("%d datagrams relayed without a permission", n)
	}
	r.perms[peer.Addr()] = struct{}{}
	d.fromClient([]byte{0x40, 0x01, 0, 1, 'x'}, client)
	if n := st.toPeersPackets.Load(); n != 1 {
		t.Errorf("with the permission back: %d relayed, want 1", n)
	}
}

// TestToPionBounded: datagrams for pion wait in a bounded queue; past it
// they are lost, and the loop does not wait.
func TestToPionBounded(t *testing.T) {
	d := &dataPath{toPion: make(chan inbound, 2), chans: map[chanKey]*pathChannel{}}
	from := netip.MustParseAddrPort("192.0.2.1:5000")
	for range 5 {
		d.fromClient([]byte{0, 1, 0, 0}, from)
	}
	if len(d.toPion) != 2 {
		t.Errorf("queued %d, want 2", len(d.toPion))
	}
}

// FuzzDataPath feeds anything to both handlers with a channel bound: none
// may panic, and a ChannelData whose length runs past the datagram is not
// forwarded.
func FuzzDataPath(f *testing.F) {
	f.Add([]byte{0x40, 0x01, 0x00, 0x02, 'h', 'i'})
	f.Add([]byte{0x40, 0x01, 0xff, 0xff, 'h', 'i'})
	f.Add([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42})
	f.Add([]byte{0x7f})
	listen, err := rawudp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		f.Fatal(err)
	}
	defer listen.Close()
	relaySock, err := rawudp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		f.Fatal(err)
	}
	defer relaySock.Close()
	client := netip.MustParseAddrPort("127.0.0.1:9") // discard: nobody reads
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	r := &pathRelay{sock: relaySock, client: client,
		perms: map[netip.Addr]struct{}{peer.Addr(): {}}, byPeer: map[netip.AddrPort]uint16{}}
	var st counters
	d := &dataPath{log: zap.NewNop(), stats: &st, listen: listen, toPion: make(chan inbound, 1),
		relays: map[uint16]*pathRelay{1: r},
		chans:  map[chanKey]*pathChannel{{client: client, number: 0x4001}: {relay: r, peer: peer}}}
	out := make([]byte, channelDataHeader+maxDatagram)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := st.toPeersPackets.Load()
		d.fromClient(pkt, client)
		if len(pkt) >= channelDataHeader && pkt[0]&0xc0 == 0x40 &&
			channelDataHeader+int(binary.BigEndian.Uint16(pkt[2:])) > len(pkt) && st.toPeersPackets.Load() != before {
			t.Fatalf("a short ChannelData was forwarded: % x", pkt)
		}
		select {
		case <-d.toPion:
		default:
		}
		d.fromPeer(r, pkt, peer, out)
		d.fromPeer(r, pkt, netip.MustParseAddrPort("198.51.100.1:1"), out)
	})
}
