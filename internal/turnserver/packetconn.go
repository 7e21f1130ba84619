package turnserver

import "net"

// packetConn is the UDP socket as pion reads it: screen sees each
// datagram first and answers the ones it takes; decorate sees each
// datagram pion sends.
type packetConn struct {
	net.PacketConn
	s *Server
}

func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		reply := c.s.screen(p[:n], addr, c.PacketConn.LocalAddr())
		if reply == nil {
			return n, addr, nil
		}
		// Lost like any datagram if it fails; the client retransmits.
		_, _ = c.PacketConn.WriteTo(reply, addr)
	}
}

func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if _, err := c.PacketConn.WriteTo(c.s.decorate(p), addr); err != nil {
		return 0, err
	}
	return len(p), nil
}
