//go:build linux

package mediabridge

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/imsgate/imsgate/internal/netpoll"
	"github.com/imsgate/imsgate/internal/rawudp"
)

// readBatch is the most datagrams one recvmmsg(2) takes off a backlogged
// socket, and the most a round queues toward browsers before one
// sendmmsg(2).
const readBatch = 32

// pollEvents is how many ready sockets one epoll_wait(2) returns at most.
const pollEvents = 256

// pollLoop is the one goroutine that moves every packet: it waits on one
// epoll instance holding the shared WebRTC socket and every session's core
// RTP and RTCP sockets (level-triggered, read readiness only), reads what
// is ready, runs each datagram's handler, and at the end of the round
// sends what the handlers queued for browsers in one sendmmsg(2).
//
// Under load a round serves many sockets, so the cost of waiting is shared
// by many packets, and no goroutine is woken per packet. Handlers run on
// this goroutine only; the SRTP contexts they use need no lock.
type pollLoop struct {
	log *zap.Logger
	set *netpoll.Set

	mu     sync.Mutex // held for a round of ready sockets; remove waits it out
	socks  map[int32]*polled
	closed bool // close has run: the set is going away

	reads atomic.Uint64 // read syscalls that returned datagrams
	done  chan struct{}
}

// polled is one socket in the loop, or a waker.
type polled struct {
	sock   *rawudp.Socket
	handle packetHandler
	waker  *loopWaker // set instead of sock and handle
	batch  bool       // may be backlogged by many senders: recvmmsg when it is
	ready  uint64     // the last round it was ready in
}

// newPollLoop starts the loop; web is the shared WebRTC socket the round's
// datagrams toward browsers leave from, and tcp (nil when off) carries
// those toward ICE-TCP browsers.
func newPollLoop(web *rawudp.Socket, tcp *tcpServer, log *zap.Logger) (*pollLoop, error) {
	set, err := netpoll.New("media-epoll", pollEvents)
	if err != nil {
		return nil, err
	}
	l := &pollLoop{log: log, set: set, socks: map[int32]*polled{}, done: make(chan struct{})}
	go l.run(newLoopScratch(web, tcp))
	return l, nil
}

// loopWaker runs work on the loop for other goroutines: an eventfd(2) in
// the epoll set, written by wake and read by the round that runs drain.
// Packets that do not come from a UDP socket (ICE-TCP) reach their
// handlers this way, on the loop, so the SRTP contexts keep one owner.
type loopWaker struct {
	fd      int
	drain   func(*loopScratch)
	pending atomic.Bool // written and not yet read: further wakes need no syscall
}

// wake makes the loop run drain in a coming round; wakes before that round
// reads the eventfd are one. Safe for any goroutine.
func (w *loopWaker) wake() {
	if !w.pending.CompareAndSwap(false, true) {
		return
	}
	one := [8]byte{1}
	for {
		_, err := unix.Write(w.fd, one[:])
		if err != unix.EINTR {
			return // EAGAIN: the counter is far from empty, the loop wakes anyway
		}
	}
}

// run reads the eventfd, then drains: a wake during drain, once pending is
// clear, writes again, so nothing queued is left waiting for a next wake.
func (w *loopWaker) run(sc *loopScratch) {
	var buf [8]byte
	_, _ = unix.Read(w.fd, buf[:])
	w.pending.Store(false)
	w.drain(sc)
}

// addWaker puts a waker for drain in the loop.
func (l *pollLoop) addWaker(drain func(*loopScratch)) (*loopWaker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &loopWaker{fd: fd, drain: drain}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = unix.Close(fd)
		return nil, errLoopClosed
	}
	if err := l.set.Add(fd, unix.EPOLLIN); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("poll eventfd: %w", err)
	}
	l.socks[int32(fd)] = &polled{waker: w}
	return w, nil
}

// removeWaker takes w out of the loop and closes it; when it returns, its
// drain does not run and will not. Nothing may wake w afterwards.
func (l *pollLoop) removeWaker(w *loopWaker) {
	l.mu.Lock()
	if p := l.socks[int32(w.fd)]; p != nil && p.waker == w {
		delete(l.socks, int32(w.fd))
		l.set.Remove(w.fd)
	}
	l.mu.Unlock()
	_ = unix.Close(w.fd)
}

// add starts reading s; handle runs on the loop for each datagram. batch
// marks a socket many peers send to (the shared WebRTC socket).
func (l *pollLoop) add(s *rawudp.Socket, handle packetHandler, batch bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLoopClosed
	}
	if err := l.set.Add(s.FD(), unix.EPOLLIN); err != nil {
		return fmt.Errorf("poll udp %v: %w", s.LocalAddr(), err)
	}
	l.socks[int32(s.FD())] = &polled{sock: s, handle: handle, batch: batch}
	return nil
}

// remove stops reading s. When it returns, no handler of s runs and none
// will, so s may be closed. An event of s already taken by the loop finds
// no entry (or, if the descriptor was reused, a read that finds nothing).
func (l *pollLoop) remove(s *rawudp.Socket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.socks[int32(s.FD())]; p != nil && p.sock == s {
		delete(l.socks, int32(s.FD()))
		l.set.Remove(s.FD())
	}
}

// close ends the loop once its round is done and waits for it; sockets
// still in it are left open.
func (l *pollLoop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.set.Close()
	<-l.done
}

func (l *pollLoop) run(sc *loopScratch) {
	defer close(l.done)
	var (
		round uint64
	)
	r := rawudp.NewBatchReader(readBatch, maxPacket)
	for {
		events, err := l.set.Wait()
		if err != nil {
			l.mu.Lock()
			if !l.closed {
				l.log.Error("media poll loop ended", zap.Error(err))
			}
			l.mu.Unlock()
			return
		}
		round++
		sc.now = time.Now() // the round's arrival time (qos.go)
		l.mu.Lock()
		for i := range events {
			p := l.socks[events[i].Fd]
			if p == nil {
				continue
			}
			if p.waker != nil {
				p.waker.run(sc)
				continue
			}
			// A socket ready two rounds running is backlogged: take what
			// queued in one recvmmsg. A lone datagram is cheaper with
			// recvfrom, which does not look for a second one.
			burst := p.batch && p.ready == round-1
			p.ready = round
			got := r.Read(p.sock.FD(), burst)
			if got == 0 {
				continue
			}
			l.reads.Add(1)
			for j := range got {
				pkt, from := r.Packet(j)
				p.handle(pkt, from, sc)
			}
		}
		sc.web.flush()
		l.mu.Unlock()
	}
}

// webBatch queues the round's datagrams toward browsers, all from the
// shared WebRTC socket, for one sendmmsg(2). A handler asks for a buffer
// (slot), writes the datagram into it, and commits it with its destination.
// A packet for an ICE-TCP browser goes to its connection's queue instead.
type webBatch struct {
	sock  *rawudp.Socket
	tcp   *tcpServer // nil when ICE-TCP is off
	bufs  [readBatch][maxPacket + srtpOverhead]byte
	names [readBatch]rawudp.Sockaddr
	iovs  [readBatch]unix.Iovec
	hs    [readBatch]rawudp.Mmsghdr
	n     int
}

func (b *webBatch) init(sock *rawudp.Socket, tcp *tcpServer) {
	b.sock, b.tcp = sock, tcp
	for i := range b.hs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.hs[i].Hdr.Iov = &b.iovs[i]
		b.hs[i].Hdr.SetIovlen(1)
		b.hs[i].Hdr.Name = &b.names[i][0]
	}
}

// slot is an empty buffer with room for one datagram.
func (b *webBatch) slot() []byte {
	if b.n == readBatch {
		b.flush()
	}
	return b.bufs[b.n][:0]
}

// commit queues the first size bytes of the last slot for to. An ICE-TCP
// browser's packet is copied to its connection's queue and the slot stays
// free.
func (b *webBatch) commit(size int, to netip.AddrPort) error {
	if isTCPAddr(to) {
		return b.tcp.send(b.bufs[b.n][:size], to)
	}
	nl, ok := b.names[b.n].Put(to, b.sock.V6())
	if !ok {
		return rawudp.ErrAddrFamily
	}
	b.hs[b.n].Hdr.Namelen = nl
	b.iovs[b.n].SetLen(size)
	b.n++
	return nil
}

// flush sends what is queued: sendto for one datagram, sendmmsg for more.
func (b *webBatch) flush() {
	queued := b.n
	if queued == 0 {
		return
	}
	b.n = 0
	for done := 0; done < queued; {
		var n uintptr
		var errno unix.Errno
		if queued-done == 1 {
			h := &b.hs[done].Hdr
			_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(b.sock.FD()),
				uintptr(unsafe.Pointer(h.Iov.Base)), uintptr(h.Iov.Len), unix.MSG_DONTWAIT,
				uintptr(unsafe.Pointer(h.Name)), uintptr(h.Namelen))
			n = 1
		} else {
			n, _, errno = unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(b.sock.FD()),
				uintptr(unsafe.Pointer(&b.hs[done])), uintptr(queued-done), unix.MSG_DONTWAIT, 0, 0)
		}
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0 || n == 0:
			// The first datagram is refused (a full buffer, an
			// unreachable address): it is lost, as on the network; send
			// the rest.
			done++
		default:
			done += int(n)
		}
	}
}
