//go:build !linux

package mediabridge

import (
	"net"
	"net/netip"
)

// readBatch is 1 where recvmmsg(2) is not available.
const readBatch = 1

// batchReader reads one datagram per call where there is no recvmmsg(2).
type batchReader struct {
	conn *net.UDPConn
	buf  [maxPacket]byte
	n    int
	from netip.AddrPort
}

func newBatchReader(conn *net.UDPConn) (*batchReader, error) {
	return &batchReader{conn: conn}, nil
}

func (r *batchReader) read() (int, error) {
	n, from, err := r.conn.ReadFromUDPAddrPort(r.buf[:])
	if err != nil {
		return 0, err
	}
	r.n = n
	r.from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return 1, nil
}

func (r *batchReader) packet(int) ([]byte, netip.AddrPort) {
	return r.buf[:r.n], r.from
}
