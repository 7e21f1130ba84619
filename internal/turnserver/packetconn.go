package turnserver

import (
	"net"
	"time"
)

// packetConn is the UDP listener as pion reads it: the data path hands it
// every datagram that is not ChannelData (STUN, in practice); screen sees
// each first and answers the ones it takes; decorate sees each datagram
// pion sends.
type packetConn struct {
	s *Server
	d *dataPath
}

func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		var in inbound
		select {
		case in = <-c.d.toPion:
		case <-c.d.closed:
			return 0, nil, net.ErrClosed
		}
		from := net.UDPAddrFromAddrPort(in.from)
		n := copy(p, in.b)
		if n < len(in.b) {
			return len(p), from, nil // pion drops what fills its buffer
		}
		reply := c.s.screen(p[:n], from, c.LocalAddr())
		if reply == nil {
			return n, from, nil
		}
		// Lost like any datagram if it fails; the client retransmits.
		_ = c.d.listen.WriteToShared(reply, in.from)
	}
}

func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if err := c.d.listen.WriteToShared(c.s.decorate(p), addrPortOf(addr)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close is pion's at its own Close: the data path stops and the listener
// closes.
func (c *packetConn) Close() error {
	c.d.close()
	return nil
}

func (c *packetConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.d.listen.LocalAddr()) }

func (c *packetConn) SetDeadline(time.Time) error      { return nil }
func (c *packetConn) SetReadDeadline(time.Time) error  { return nil }
func (c *packetConn) SetWriteDeadline(time.Time) error { return nil }
