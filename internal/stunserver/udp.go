package stunserver

import (
	"errors"
	"net"
	"net/netip"

	"github.com/pion/stun/v4"
)

// maxDatagram is the read buffer of a UDP socket: the largest UDP payload,
// so that no datagram is cut short and then misread.
const maxDatagram = 65535

// serveUDP is the one read loop of the socket of role r. Its buffers are
// allocated once; the answer may go out of another socket (CHANGE-REQUEST),
// which is safe as sends on a UDP socket need no lock.
func (s *Server) serveUDP(r role) {
	conn := s.sock.udp[r]
	buf := make([]byte, maxDatagram)
	in, out := stun.New(), stun.New()
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.done:
				return
			default:
				continue
			}
		}
		s.stats.udpRequests.Add(1)
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		d := s.h.handle(buf[:n], transportUDP, r, src, in, out)
		s.stats.count(d, r)
		s.logDecision(d, transportUDP, r, src)
		if d.action != actionAnswer && d.action != actionRefuse {
			continue
		}
		from := s.sock.udp[d.from]
		if from == nil {
			s.stats.sendErrors.Add(1)
			continue
		}
		if _, err := from.WriteToUDPAddrPort(out.Raw, d.to); err != nil {
			s.stats.sendErrors.Add(1)
		}
	}
}
