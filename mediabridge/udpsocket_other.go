//go:build !linux

package mediabridge

import (
	"errors"
	"net"
	"net/netip"
)

// udpSocket is a net.UDPConn where the poll loop's epoll reader is not
// available.
type udpSocket struct {
	conn  *net.UDPConn
	local netip.AddrPort
}

var errAddrFamily = errors.New("destination address family does not match the socket")

func listenUDP(addr netip.AddrPort, buffer int) (*udpSocket, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	if buffer > 0 {
		_ = conn.SetReadBuffer(buffer)
		_ = conn.SetWriteBuffer(buffer)
	}
	la := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return &udpSocket{conn: conn, local: netip.AddrPortFrom(la.Addr().Unmap(), la.Port())}, nil
}

func (s *udpSocket) localAddr() netip.AddrPort { return s.local }

func (s *udpSocket) writeTo(p []byte, to netip.AddrPort) error {
	_, err := s.conn.WriteToUDPAddrPort(p, to)
	return err
}

// writeToShared is writeTo: a net.UDPConn is safe for any goroutine.
func (s *udpSocket) writeToShared(p []byte, to netip.AddrPort) error { return s.writeTo(p, to) }

func (s *udpSocket) close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
