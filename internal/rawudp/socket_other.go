//go:build !linux

package rawudp

import (
	"errors"
	"net"
	"net/netip"
)

// Socket is a net.UDPConn where the poll loops' epoll readers are not
// available; a reader goroutine per socket reads Conn.
type Socket struct {
	conn  *net.UDPConn
	local netip.AddrPort
}

// ErrAddrFamily is a destination the socket's family cannot reach.
var ErrAddrFamily = errors.New("destination address family does not match the socket")

// Listen binds addr; buffer, when positive, asks for that buffer size.
func Listen(addr netip.AddrPort, buffer int) (*Socket, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	if buffer > 0 {
		_ = conn.SetReadBuffer(buffer)
		_ = conn.SetWriteBuffer(buffer)
	}
	la := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return &Socket{conn: conn, local: netip.AddrPortFrom(la.Addr().Unmap(), la.Port())}, nil
}

// Conn is the socket, for its reader goroutine.
func (s *Socket) Conn() *net.UDPConn { return s.conn }

// LocalAddr is the bound address.
func (s *Socket) LocalAddr() netip.AddrPort { return s.local }

// WriteTo sends one datagram.
func (s *Socket) WriteTo(p []byte, to netip.AddrPort) error {
	_, err := s.conn.WriteToUDPAddrPort(p, to)
	return err
}

// WriteToShared is WriteTo: a net.UDPConn is safe for any goroutine.
func (s *Socket) WriteToShared(p []byte, to netip.AddrPort) error { return s.WriteTo(p, to) }

// Close is idempotent.
func (s *Socket) Close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
