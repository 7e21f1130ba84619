//go:build linux

package rawudp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2); Go pads it to
// the C layout.
type Mmsghdr struct {
	Hdr unix.Msghdr
	N   uint32
}

// BatchReader reads a ready socket with recvfrom(2) or recvmmsg(2). Its
// buffers and headers are allocated once and owned by one loop, so a read
// allocates nothing.
//
// golang.org/x/net/ipv4.PacketConn.ReadBatch does the same syscall but
// allocates a net.UDPAddr and its IP for every datagram; this reader
// parses the source into a netip.AddrPort in place.
type BatchReader struct {
	size  int
	bufs  [][]byte
	names []Sockaddr
	iovs  []unix.Iovec
	hs    []Mmsghdr
}

// NewBatchReader reads up to batch datagrams of up to size bytes at once;
// a longer datagram is cut to size.
func NewBatchReader(batch, size int) *BatchReader {
	r := &BatchReader{
		size:  size,
		bufs:  make([][]byte, batch),
		names: make([]Sockaddr, batch),
		iovs:  make([]unix.Iovec, batch),
		hs:    make([]Mmsghdr, batch),
	}
	for i := range r.hs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.hs[i].Hdr.Iov = &r.iovs[i]
		r.hs[i].Hdr.SetIovlen(1)
		r.hs[i].Hdr.Name = &r.names[i][0]
	}
	return r
}

// Read takes what fd has queued, up to the batch when burst, else one
// datagram, and returns how many. Nothing queued (a stale or spurious
// event) and errors give 0: a UDP socket has no error a retry would not
// also get, and the next datagram is independent of this one.
func (r *BatchReader) Read(fd int, burst bool) int {
	for {
		var n uintptr
		var errno unix.Errno
		if burst {
			for i := range r.hs {
				r.hs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
				r.hs[i].Hdr.Flags = 0
				r.hs[i].N = 0
			}
			n, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd),
				uintptr(unsafe.Pointer(&r.hs[0])), uintptr(len(r.hs)), unix.MSG_DONTWAIT, 0, 0)
		} else {
			r.hs[0].Hdr.Namelen = unix.SizeofSockaddrInet6
			n, _, errno = unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd),
				uintptr(unsafe.Pointer(&r.bufs[0][0])), uintptr(r.size), unix.MSG_DONTWAIT,
				uintptr(unsafe.Pointer(&r.names[0][0])), uintptr(unsafe.Pointer(&r.hs[0].Hdr.Namelen)))
			if errno == 0 {
				r.hs[0].N, n = uint32(n), 1 //nolint:gosec // at most size
			}
		}
		switch errno {
		case 0:
			return int(n) //nolint:gosec // at most the batch
		case unix.EINTR:
			continue
		default:
			return 0
		}
	}
}

// Packet returns datagram i of the last Read and its source; valid until
// the next Read.
func (r *BatchReader) Packet(i int) ([]byte, netip.AddrPort) {
	return r.bufs[i][:r.hs[i].N], r.names[i].AddrPort()
}
