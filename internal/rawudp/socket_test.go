//go:build linux

package rawudp

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSockaddrRoundTrip(t *testing.T) {
	tests := []struct {
		addr string
		v6   bool
		ok   bool
		want string
	}{
		{"192.0.2.1:3478", false, true, "192.0.2.1:3478"},
		{"192.0.2.1:3478", true, true, "192.0.2.1:3478"}, // written IPv4-mapped, read back unmapped
		{"[2001:db8::1]:5349", true, true, "[2001:db8::1]:5349"},
		{"[2001:db8::1]:5349", false, false, ""},
		{"[::ffff:192.0.2.7]:1", false, true, "192.0.2.7:1"},
	}
	for _, tt := range tests {
		var sa Sockaddr
		_, ok := sa.Put(netip.MustParseAddrPort(tt.addr), tt.v6)
		if ok != tt.ok {
			t.Errorf("Put(%s, v6=%v) ok = %v, want %v", tt.addr, tt.v6, ok, tt.ok)
			continue
		}
		if ok && sa.AddrPort().String() != tt.want {
			t.Errorf("Put(%s, v6=%v) then AddrPort = %v, want %s", tt.addr, tt.v6, sa.AddrPort(), tt.want)
		}
	}
}

// TestBatchReader reads one datagram with recvfrom and a backlog with
// recvmmsg, sources included, and cuts nothing shorter than its size.
func TestBatchReader(t *testing.T) {
	s, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	from := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	r := NewBatchReader(4, 64)
	if got := r.Read(s.FD(), false); got != 0 {
		t.Fatalf("Read on an empty socket = %d", got)
	}
	for _, p := range []string{"one", "two", "three"} {
		if _, err := peer.WriteToUDPAddrPort([]byte(p), s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitReadable(t, s)
	if got := r.Read(s.FD(), false); got != 1 {
		t.Fatalf("Read = %d, want 1", got)
	}
	if p, src := r.Packet(0); string(p) != "one" || src != from {
		t.Errorf("Packet(0) = %q from %v, want one from %v", p, src, from)
	}
	if got := r.Read(s.FD(), true); got != 2 {
		t.Fatalf("burst Read = %d, want 2", got)
	}
	if p, _ := r.Packet(1); string(p) != "three" {
		t.Errorf("Packet(1) = %q, want three", p)
	}
	// And the socket writes.
	if err := s.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "back" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	_ = s.Close()
	if err := s.WriteToShared([]byte("x"), from); err == nil {
		t.Error("WriteToShared after Close succeeded")
	}
}

// waitReadable gives loopback a moment: the datagrams are queued by the
// time a blocking peek returns.
func waitReadable(t *testing.T, s *Socket) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(s.FD()), Events: unix.POLLIN}} //nolint:gosec // a descriptor
	if _, err := unix.Poll(fds, 2000); err != nil {
		t.Fatal(err)
	}
}
