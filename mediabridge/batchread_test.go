package mediabridge

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestBatchReaderSources reads datagrams queued from several sources in as
// few reads as the platform allows, each with its own payload and source,
// IPv4-mapped sources unmapped as ReadFromUDPAddrPort callers did.
func TestBatchReaderSources(t *testing.T) {
	tests := []struct {
		name     string
		network  string
		listen   string
		peerNet  string
		peerAddr string
	}{
		{name: "ipv4", network: "udp4", listen: "127.0.0.1:0", peerNet: "udp4", peerAddr: "127.0.0.1:0"},
		{name: "ipv6", network: "udp6", listen: "[::1]:0", peerNet: "udp6", peerAddr: "[::1]:0"},
		{name: "ipv4 to a dual-stack socket", network: "udp", listen: "[::]:0", peerNet: "udp4", peerAddr: "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.ListenUDP(tt.network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tt.listen)))
			if err != nil {
				t.Skipf("listen %s: %v", tt.listen, err)
			}
			defer conn.Close()
			dst := netip.AddrPortFrom(netip.MustParseAddrPort(tt.peerAddr).Addr(), conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
			const peers = 3
			var want []netip.AddrPort
			for i := range peers {
				p, err := net.ListenUDP(tt.peerNet, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tt.peerAddr)))
				if err != nil {
					t.Skipf("listen peer: %v", err)
				}
				defer p.Close()
				want = append(want, p.LocalAddr().(*net.UDPAddr).AddrPort())
				if _, err := p.WriteToUDPAddrPort([]byte{byte(i), 0xAA, byte(i)}, dst); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			r, err := newBatchReader(conn)
			if err != nil {
				t.Fatalf("batch reader: %v", err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := 0
			for got < peers {
				n, err := r.read()
				if err != nil {
					t.Fatalf("read after %d: %v", got, err)
				}
				for i := range n {
					pkt, from := r.packet(i)
					k := got + i
					if string(pkt) != string([]byte{byte(k), 0xAA, byte(k)}) {
						t.Errorf("packet %d = %x", k, pkt)
					}
					if from != want[k] {
						t.Errorf("packet %d from %v, want %v", k, from, want[k])
					}
				}
				got += n
			}
			if got != peers {
				t.Errorf("read %d packets, want %d", got, peers)
			}
		})
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
