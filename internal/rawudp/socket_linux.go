//go:build linux

package rawudp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is a non-blocking UDP socket a poll loop reads. It is not a
// net.UDPConn on purpose: Go's netpoller registers every socket for write
// readiness too, edge-triggered, so each datagram the kernel frees after a
// send wakes the netpoller's epoll — a wakeup per forwarded packet that a
// packet path does not need. Writes never block: a full send buffer loses
// the datagram, as the network would.
type Socket struct {
	fd    int
	local netip.AddrPort
	v6    bool // AF_INET6: IPv4 peers are written IPv4-mapped

	// mu keeps the descriptor from closing under a WriteToShared: a write
	// from another goroutine may race a late close, and a closed number is
	// reused by the next socket.
	mu     sync.RWMutex
	closed bool
}

// ErrAddrFamily is a destination the socket's family cannot reach.
var ErrAddrFamily = errors.New("destination address family does not match the socket")

// Listen binds addr; an IPv4 address (0.0.0.0 included) gives an IPv4
// socket, an IPv6 one a socket that also takes IPv4 when it is "::".
// buffer, when positive, asks for that receive and send buffer size.
func Listen(addr netip.AddrPort, buffer int) (*Socket, error) {
	ip := addr.Addr().Unmap()
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	s := &Socket{fd: fd, v6: family == unix.AF_INET6}
	if err := s.bind(netip.AddrPortFrom(ip, addr.Port()), buffer); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func (s *Socket) bind(addr netip.AddrPort, buffer int) error {
	var sa unix.Sockaddr
	if s.v6 {
		if addr.Addr().IsUnspecified() {
			// Dual stack, as net.ListenUDP makes a wildcard socket.
			_ = unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		}
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	}
	if buffer > 0 {
		// The kernel caps both at net.core.{r,w}mem_max; a smaller buffer
		// only loses more in a burst, so failure is not fatal.
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buffer)
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buffer)
	}
	if err := unix.Bind(s.fd, sa); err != nil {
		return fmt.Errorf("bind udp %v: %w", addr, err)
	}
	bound, err := unix.Getsockname(s.fd)
	if err != nil {
		return fmt.Errorf("udp socket name: %w", err)
	}
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		s.local = netip.AddrPortFrom(netip.AddrFrom4(b.Addr), uint16(b.Port)) //nolint:gosec // a port
	case *unix.SockaddrInet6:
		s.local = netip.AddrPortFrom(netip.AddrFrom16(b.Addr).Unmap(), uint16(b.Port)) //nolint:gosec // a port
	}
	return nil
}

// FD is the descriptor, for a poll loop's epoll set and its reads.
func (s *Socket) FD() int { return s.fd }

// V6 tells an AF_INET6 socket (IPv4 destinations written IPv4-mapped).
func (s *Socket) V6() bool { return s.v6 }

// LocalAddr is the bound address.
func (s *Socket) LocalAddr() netip.AddrPort { return s.local }

// WriteTo sends one datagram without blocking. It is for a poll loop's
// handlers, which end before any socket of theirs closes, so it takes no
// lock: it is the per-packet path.
func (s *Socket) WriteTo(p []byte, to netip.AddrPort) error {
	var sa Sockaddr
	n, ok := sa.Put(to, s.v6)
	if !ok {
		return ErrAddrFamily
	}
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd),
			uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&sa[0])), uintptr(n))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return fmt.Errorf("udp send to %v: %w", to, errno)
		}
	}
}

// WriteToShared is WriteTo for any other goroutine (a DTLS handshake, a
// TURN server's control messages): it holds off Close, so it never writes
// to a closed, reused descriptor.
func (s *Socket) WriteToShared(p []byte, to netip.AddrPort) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return net.ErrClosed
	}
	return s.WriteTo(p, to)
}

// Close is idempotent. The poll loop must have let go of the socket and no
// writer may use it afterwards: the descriptor number is reused by the
// next socket.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// Sockaddr is a sockaddr_in or sockaddr_in6 in kernel layout.
type Sockaddr [unix.SizeofSockaddrInet6]byte

// Put encodes to for a socket of the given family and returns the length.
func (sa *Sockaddr) Put(to netip.AddrPort, v6 bool) (uint32, bool) {
	ip := to.Addr()
	if !v6 {
		if !ip.Unmap().Is4() {
			return 0, false
		}
		a := ip.Unmap().As4()
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET)
		binary.BigEndian.PutUint16(sa[2:4], to.Port())
		copy(sa[4:8], a[:])
		clear(sa[8:16])
		return unix.SizeofSockaddrInet4, true
	}
	if !ip.IsValid() {
		return 0, false
	}
	a := ip.As16() // IPv4 comes out IPv4-mapped
	binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET6)
	binary.BigEndian.PutUint16(sa[2:4], to.Port())
	clear(sa[4:8]) // flow info
	copy(sa[8:24], a[:])
	clear(sa[24:28]) // scope id
	return unix.SizeofSockaddrInet6, true
}

// AddrPort decodes a sockaddr the kernel filled in, IPv4-mapped addresses
// unmapped. An unknown family gives an invalid address.
func (sa *Sockaddr) AddrPort() netip.AddrPort {
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	default:
		return netip.AddrPort{}
	}
}
