//go:build linux

package mediabridge

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readBatch is the most datagrams one recvmmsg(2) call takes off the shared
// socket. Under load many browsers' packets wait at once; one syscall then
// serves up to this many. When one packet waits, the call returns that one.
const readBatch = 32

// mmsghdr is struct mmsghdr of recvmmsg(2); Go pads it to the C layout.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batchReader reads the shared socket with recvmmsg(2). Everything it uses
// (buffers, headers, address space, the syscall closure) is allocated once,
// so a read allocates nothing. It is used by the socket's one read loop only.
//
// golang.org/x/net/ipv4.PacketConn.ReadBatch does the same syscall but
// allocates a net.UDPAddr and its IP for every datagram; this reader parses
// the source into a netip.AddrPort in place.
type batchReader struct {
	rc    syscall.RawConn
	bufs  [readBatch][maxPacket]byte
	names [readBatch][unix.SizeofSockaddrInet6]byte
	iovs  [readBatch]unix.Iovec
	hs    [readBatch]mmsghdr
	fn    func(fd uintptr) bool // r.recv, bound once
	n     int                   // datagrams of the last read
	errno syscall.Errno
	tries int  // recv calls in this read: 1 means data was already queued
	burst bool // the socket was backlogged at the last read: use recvmmsg
}

func newBatchReader(conn *net.UDPConn) (*batchReader, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("webrtc socket raw conn: %w", err)
	}
	r := &batchReader{rc: rc}
	for i := range r.hs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(maxPacket)
		r.hs[i].hdr.Iov = &r.iovs[i]
		r.hs[i].hdr.SetIovlen(1)
		r.hs[i].hdr.Name = &r.names[i][0]
	}
	r.fn = r.recv
	return r, nil
}

// read waits for at least one datagram and returns how many it took, up
// to readBatch. Only the first wait parks in the netpoller, as
// ReadFromUDPAddrPort does; what is already queued comes in the same call.
//
// While datagrams arrive one at a time (the read parked first, or the last
// batch held one), it reads with recvfrom(2) as ReadFromUDPAddrPort did:
// recvmmsg(2) costs more for a lone datagram (a longer kernel path and a
// second receive attempt that finds the queue empty). A read that finds a
// datagram already waiting means the socket is backlogged, and the next
// reads take batches until one holds a single datagram.
func (r *batchReader) read() (int, error) {
	r.tries = 0
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("read webrtc socket: %w", r.errno)
	}
	if r.burst {
		r.burst = r.n > 1
	} else {
		r.burst = r.tries == 1
	}
	return r.n, nil
}

// recv is the RawConn.Read callback: false means "nothing yet, wait".
func (r *batchReader) recv(fd uintptr) bool {
	r.tries++
	for {
		var n uintptr
		var errno syscall.Errno
		if r.burst {
			for i := range r.hs {
				r.hs[i].hdr.Namelen = unix.SizeofSockaddrInet6
				r.hs[i].hdr.Flags = 0
				r.hs[i].n = 0
			}
			n, _, errno = unix.Syscall6(unix.SYS_RECVMMSG, fd,
				uintptr(unsafe.Pointer(&r.hs[0])), readBatch, unix.MSG_DONTWAIT, 0, 0)
		} else {
			r.hs[0].hdr.Namelen = unix.SizeofSockaddrInet6
			n, _, errno = unix.Syscall6(unix.SYS_RECVFROM, fd,
				uintptr(unsafe.Pointer(&r.bufs[0][0])), maxPacket, unix.MSG_DONTWAIT,
				uintptr(unsafe.Pointer(&r.names[0][0])), uintptr(unsafe.Pointer(&r.hs[0].hdr.Namelen)))
			if errno == 0 {
				r.hs[0].n, n = uint32(n), 1
			}
		}
		switch errno {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.n, r.errno = 0, errno
			return true
		}
	}
}

// packet returns datagram i of the last read and its source, IPv4-mapped
// addresses unmapped. An unknown address family gives an invalid address.
func (r *batchReader) packet(i int) ([]byte, netip.AddrPort) {
	pkt := r.bufs[i][:r.hs[i].n]
	sa := &r.names[i]
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		return pkt, netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		return pkt, netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	default:
		return pkt, netip.AddrPort{}
	}
}
