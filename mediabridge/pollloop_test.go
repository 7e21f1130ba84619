package mediabridge

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/rawudp"
	"go.uber.org/zap"
)

type loopPacket struct {
	data []byte
	from netip.AddrPort
}

// collect is a handler that hands copies of its datagrams to a channel.
func collect(ch chan<- loopPacket) packetHandler {
	return func(pkt []byte, from netip.AddrPort, _ *loopScratch) {
		ch <- loopPacket{data: append([]byte(nil), pkt...), from: from}
	}
}

func newLoop(t *testing.T) *pollLoop {
	t.Helper()
	l, err := newPollLoop(listenSocket(t, "127.0.0.1:0"), nil, zap.NewNop())
	if err != nil {
		t.Fatalf("poll loop: %v", err)
	}
	t.Cleanup(l.close)
	return l
}

func listenSocket(t *testing.T, addr string) *rawudp.Socket {
	t.Helper()
	s, err := rawudp.Listen(netip.MustParseAddrPort(addr), 0)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestPollLoopSources reads datagrams queued from several sources, more
// than one batch of them, each with its own payload and source, IPv4-mapped
// sources unmapped as ReadFromUDPAddrPort callers did.
func TestPollLoopSources(t *testing.T) {
	tests := []struct {
		name     string
		listen   string
		peerNet  string
		peerAddr string
	}{
		{name: "ipv4", listen: "127.0.0.1:0", peerNet: "udp4", peerAddr: "127.0.0.1:0"},
		{name: "ipv6", listen: "[::1]:0", peerNet: "udp6", peerAddr: "[::1]:0"},
		{name: "ipv4 to a dual-stack socket", listen: "[::]:0", peerNet: "udp4", peerAddr: "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := listenSocket(t, tt.listen)
			l := newLoop(t)
			got := make(chan loopPacket, 256)
			if err := l.add(sock, collect(got), true); err != nil {
				t.Fatalf("add: %v", err)
			}
			defer l.remove(sock)
			dst := netip.AddrPortFrom(netip.MustParseAddrPort(tt.peerAddr).Addr(), sock.LocalAddr().Port())
			const peers, each = 3, readBatch + 3
			var conns []*net.UDPConn
			for range peers {
				p, err := net.ListenUDP(tt.peerNet, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tt.peerAddr)))
				if err != nil {
					t.Skipf("listen peer: %v", err)
				}
				defer p.Close()
				conns = append(conns, p)
			}
			for i := range each {
				for p, c := range conns {
					if _, err := c.WriteToUDPAddrPort([]byte{byte(p), 0xAA, byte(i)}, dst); err != nil {
						t.Fatalf("write: %v", err)
					}
				}
			}
			next := make([]int, peers) // per source, the sequence expected next
			for k := range peers * each {
				var pkt loopPacket
				select {
				case pkt = <-got:
				case <-time.After(5 * time.Second):
					t.Fatalf("%d of %d datagrams read", k, peers*each)
				}
				p := int(pkt.data[0])
				if len(pkt.data) != 3 || p >= peers || pkt.data[1] != 0xAA || int(pkt.data[2]) != next[p] {
					t.Fatalf("datagram %d = %x, want source %d's #%d", k, pkt.data, p, next[min(p, peers-1)])
				}
				if want := conns[p].LocalAddr().(*net.UDPAddr).AddrPort(); pkt.from != want {
					t.Errorf("datagram %d from %v, want %v", k, pkt.from, want)
				}
				next[p]++
			}
		})
	}
}

// TestPollLoopRemove: once remove returns the handler is not called again,
// and another socket still is.
func TestPollLoopRemove(t *testing.T) {
	l := newLoop(t)
	a, b := listenSocket(t, "127.0.0.1:0"), listenSocket(t, "127.0.0.1:0")
	gotA, gotB := make(chan loopPacket, 8), make(chan loopPacket, 8)
	if err := l.add(a, collect(gotA), false); err != nil {
		t.Fatalf("add a: %v", err)
	}
	if err := l.add(b, collect(gotB), false); err != nil {
		t.Fatalf("add b: %v", err)
	}
	defer l.remove(b)
	peer := listenLoopback(t)
	send := func(to *rawudp.Socket) {
		t.Helper()
		if _, err := peer.WriteToUDPAddrPort([]byte("x"), to.LocalAddr()); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	send(a)
	select {
	case <-gotA:
	case <-time.After(5 * time.Second):
		t.Fatal("a: nothing read")
	}
	l.remove(a)
	send(a)
	send(b)
	select {
	case <-gotB:
	case <-time.After(5 * time.Second):
		t.Fatal("b: nothing read")
	}
	select {
	case p := <-gotA:
		t.Fatalf("a read %q after remove", p.data)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestWebBatchFlush queues more datagrams than one batch holds: all arrive,
// in order; an address of the wrong family is refused at commit.
func TestWebBatchFlush(t *testing.T) {
	sock := listenSocket(t, "127.0.0.1:0")
	peer := listenLoopback(t)
	var b webBatch
	b.init(sock, nil)
	const n = 2*readBatch + 3
	for i := range n {
		buf := append(b.slot(), byte(i), 0xBB)
		if err := b.commit(len(buf), addrOf(peer)); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	b.flush()
	rbuf := make([]byte, 16)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		m, from, err := peer.ReadFromUDPAddrPort(rbuf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if m != 2 || rbuf[0] != byte(i) || from != sock.LocalAddr() {
			t.Fatalf("datagram %d = %x from %v", i, rbuf[:m], from)
		}
	}
	_ = b.slot()
	if err := b.commit(1, netip.MustParseAddrPort("[2001:db8::1]:5004")); err == nil {
		t.Error("IPv6 destination on an IPv4 socket: commit succeeded")
	}
}

// TestWebRTCSocketBurst sends more SRTP packets back to back than one batch
// holds; every one reaches the core, in order, with nothing dropped.
func TestWebRTCSocketBurst(t *testing.T) {
	call := newRawCall(t)
	const burst = 2*readBatch + 5
	pool := newEncryptedPool(t, call.toGW, burst)
	for _, pkt := range pool.pkts {
		if _, err := call.browser.WriteToUDPAddrPort(pkt, call.gwWeb); err != nil {
			t.Fatalf("browser write: %v", err)
		}
	}
	_ = call.core.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, maxPacket)
	for i := range burst {
		n, _, err := call.core.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("core read %d: %v (stats %+v)", i, err, call.session.Stats())
		}
		if seq := int(buf[2])<<8 | int(buf[3]); n != len(g711Packet(0)) || seq != i+1 || buf[1]&0x7f != 96 {
			t.Fatalf("packet %d: len %d seq %d pt %d", i, n, seq, buf[1]&0x7f)
		}
	}
	// The count of forwarded packets is not checked: the last one is counted
	// after its write, which the core may read first.
	if st := call.session.Stats(); st.Dropped != 0 {
		t.Errorf("dropped %d", st.Dropped)
	}
}
