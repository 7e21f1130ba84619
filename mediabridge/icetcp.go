package mediabridge

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/internal/hostkey"

	"go.uber.org/zap"
)

// ICE-TCP (RFC 6544) for browsers whose UDP is blocked: the gateway offers
// one passive host candidate (media.webrtc_tcp_port) beside the UDP one,
// and the browser connects to it (an active candidate). Each connection
// carries RFC 4571 frames (tcpframe.go), one packet each, demultiplexed
// like datagrams on the shared UDP socket.
//
// The packet path is the UDP one. A connection gets a synthetic browser
// address in the discard-only prefix 100::/64 (RFC 6666), naming its slot
// in the server's table, with the connection's remote port. The address
// table, learn, consent expiry and the session's remote address work with
// it unchanged. A connection's reader hands each frame to the poll loop
// through one bounded queue and the loop's waker, and the loop runs
// handlePacket for it as for a datagram, so the SRTP contexts keep their
// one owner. Whatever the loop or a DTLS handshake sends to a synthetic
// address goes, framed, into that connection's bounded queue, which a
// writer goroutine drains; a full queue drops, as a full UDP socket does.
//
// A connection lives while its address is in the table: it must pass an
// ICE check (our ufrag, MESSAGE-INTEGRITY with our password) within the
// check timeout, and it is closed when its address is forgotten (consent
// expired, evicted, its session closed). Its end forgets its address, on
// the loop, after its last packet.

// tcpAddrPrefix is the first half of every synthetic address: 100::/64,
// RFC 6666's discard-only prefix, which no real browser sends from.
const tcpAddrPrefix = 0x0100_0000_0000_0000

// isTCPAddr tells whether a is the synthetic address of an ICE-TCP
// connection. It runs per packet sent toward a browser.
func isTCPAddr(a netip.AddrPort) bool {
	ip := a.Addr()
	if !ip.Is6() {
		return false
	}
	b := ip.As16()
	return binary.BigEndian.Uint64(b[:8]) == tcpAddrPrefix
}

// tcpAddrOf is the synthetic address of the connection in slot, its gen-th
// user, from remote port port.
func tcpAddrOf(slot, gen uint32, port uint16) netip.AddrPort {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], tcpAddrPrefix)
	binary.BigEndian.PutUint32(b[8:12], slot)
	binary.BigEndian.PutUint32(b[12:16], gen)
	return netip.AddrPortFrom(netip.AddrFrom16(b), port)
}

// tcpLimits bound what ICE-TCP peers may hold.
type tcpLimits struct {
	conns        int           // connections at once: the table's slots
	pendingPerIP int           // connections from one IP (an IPv6 /64) not yet past an ICE check
	pendingTotal int           // such connections from all: the rest of the slots stay for checked ones
	checkTimeout time.Duration // for a connection to pass its first check
	writeTimeout time.Duration // for the browser to take one frame
}

const (
	// tcpCheckTimeout closes a connection that has not passed an ICE check:
	// a browser sends its first check as soon as it has connected.
	tcpCheckTimeout = 5 * time.Second
	// tcpPendingPerIP is how many connections one address may have in its
	// first seconds; a NAT's many browsers seldom connect at the same moment,
	// and past the check a connection is bound by its session's addresses.
	tcpPendingPerIP = 8
	// tcpWriteTimeout closes a connection whose browser takes no data that
	// long (its receive window stays shut): its call has no audio anyway.
	tcpWriteTimeout = 10 * time.Second
	// tcpDrainBatch is how many frames a round of the poll loop takes from
	// the queue; the rest wait a round, after the sockets ready meanwhile.
	tcpDrainBatch = 64
)

// defaultTCPLimits allows two connections per session (a browser connects
// from each of its interfaces) and at least 64.
func defaultTCPLimits(sessions int) tcpLimits {
	return tcpLimits{
		conns:        min(max(2*sessions, 64), 1<<13),
		pendingPerIP: tcpPendingPerIP,
		pendingTotal: max(min(max(2*sessions, 64), 1<<13)/4, 16),
		checkTimeout: tcpCheckTimeout,
		writeTimeout: tcpWriteTimeout,
	}
}

var (
	errNoTCPConn    = errors.New("no ice-tcp connection for the address")
	errTCPQueueFull = errors.New("ice-tcp send queue full")
)

// tcpServer accepts ICE-TCP connections and moves their packets between
// them and the poll loop.
type tcpServer struct {
	log    *zap.Logger
	ln     net.Listener
	limits tcpLimits
	port   int // of the candidate: the listener's

	sock  *webrtcSocket // set by start
	waker *loopWaker    // set by start

	// slots are the open connections by the slot their address names; the
	// packet path reads them with atomic loads.
	slots []atomic.Pointer[tcpConn]
	// ready is every frame read for the loop and every connection's end,
	// in order. It holds all the frames of every slot and their ends, so a
	// reader never blocks on it.
	ready chan *tcpFrame

	mu         sync.Mutex
	free       []uint32           // unused slots
	gens       []uint32           // by slot: the last connection's generation
	pending    map[netip.Addr]int // by pendingKey: connections not yet past a check
	pendingAll int                // all of them
	closed     bool

	refused atomic.Uint64 // connections refused at a limit
	dropped atomic.Uint64 // packets for a browser dropped: its queue full or its connection gone

	done chan struct{}
	wg   sync.WaitGroup // the accept loop and every connection's reader and writer
}

func newTCPServer(ln net.Listener, limits tcpLimits, log *zap.Logger) *tcpServer {
	t := &tcpServer{
		log:     log,
		ln:      ln,
		limits:  limits,
		slots:   make([]atomic.Pointer[tcpConn], limits.conns),
		ready:   make(chan *tcpFrame, limits.conns*(tcpInFrames+1)),
		free:    make([]uint32, limits.conns),
		gens:    make([]uint32, limits.conns),
		pending: map[netip.Addr]int{},
		done:    make(chan struct{}),
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		t.port = a.Port
	}
	for i := range t.free {
		t.free[i] = uint32(len(t.free) - 1 - i) // slot 0 first
	}
	return t
}

// start hands packets to sock's handlers on loop and accepts connections.
func (t *tcpServer) start(sock *webrtcSocket, loop *pollLoop) error {
	w, err := loop.addWaker(t.drain)
	if err != nil {
		return err
	}
	t.sock, t.waker = sock, w
	t.wg.Add(1)
	go t.serve()
	return nil
}

// serve accepts until the listener closes. A failed accept (out of
// descriptors) waits a little, as net/http does, rather than spin.
func (t *tcpServer) serve() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.log.Error("ice-tcp accept", zap.Error(err), zap.Duration("dur", backoff))
			select {
			case <-time.After(backoff):
				continue
			case <-t.done:
				return
			}
		}
		backoff = 0
		t.admit(nc)
	}
}

// admit starts a connection, or closes it at once at a limit.
func (t *tcpServer) admit(nc net.Conn) {
	var remote netip.AddrPort
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		remote = a.AddrPort()
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	}
	key := pendingKey(remote.Addr())
	t.mu.Lock()
	if t.closed || len(t.free) == 0 || t.pending[key] >= t.limits.pendingPerIP || t.pendingAll >= t.limits.pendingTotal {
		t.mu.Unlock()
		t.refused.Add(1)
		_ = nc.Close()
		if ce := t.log.Check(zap.DebugLevel, "ice-tcp connection refused at a limit"); ce != nil {
			ce.Write(zap.Stringer("remote_addr", remote))
		}
		return
	}
	slot := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	t.gens[slot]++
	t.pending[key]++
	t.pendingAll++
	c := newTCPConn(t, nc, slot, tcpAddrOf(slot, t.gens[slot], remote.Port()), remote)
	t.slots[slot].Store(c)
	t.wg.Add(2)
	t.mu.Unlock()
	go c.read()
	go c.write()
}

// lookup finds the open connection of a synthetic address.
func (t *tcpServer) lookup(a netip.AddrPort) *tcpConn {
	if t == nil {
		return nil
	}
	b := a.Addr().As16()
	slot := binary.BigEndian.Uint32(b[8:12])
	if uint64(slot) >= uint64(len(t.slots)) {
		return nil
	}
	if c := t.slots[slot].Load(); c != nil && c.addr == a {
		return c
	}
	return nil
}

// remoteOf is the real remote address behind a synthetic one.
func (t *tcpServer) remoteOf(a netip.AddrPort) (netip.AddrPort, bool) {
	if c := t.lookup(a); c != nil {
		return c.remote, true
	}
	return netip.AddrPort{}, false
}

// send queues p, framed, for the connection of synthetic address to. It
// never blocks; any goroutine may call it.
func (t *tcpServer) send(p []byte, to netip.AddrPort) error {
	c := t.lookup(to)
	if c == nil {
		if t != nil {
			t.dropped.Add(1)
		}
		return errNoTCPConn
	}
	return c.send(p)
}

// verify marks the connection of a that passed an ICE check: it no longer
// counts as pending, and the check timer stops. On the loop.
func (t *tcpServer) verify(a netip.AddrPort) {
	c := t.lookup(a)
	if c == nil || !c.verified.CompareAndSwap(false, true) {
		return
	}
	c.checkTimer.Stop()
	t.mu.Lock()
	t.unpend(c)
	t.mu.Unlock()
}

// unpend releases c's place among its IP's pending connections, once.
// Under t.mu.
func (t *tcpServer) unpend(c *tcpConn) {
	if !c.pending {
		return
	}
	c.pending = false
	t.pendingAll--
	key := pendingKey(c.remote.Addr())
	if n := t.pending[key] - 1; n > 0 {
		t.pending[key] = n
	} else {
		delete(t.pending, key)
	}
}

// pendingKey is what the per-IP limit counts by: the host's range.
func pendingKey(ip netip.Addr) netip.Addr { return hostkey.Of(ip).Addr() }

// closeAddr closes the connection of a: its address was forgotten.
func (t *tcpServer) closeAddr(a netip.AddrPort) {
	if c := t.lookup(a); c != nil {
		c.close()
	}
}

// drain runs on the poll loop: the queued frames go to the shared socket's
// handler from their connections' addresses, and an ended connection's
// address is forgotten and its slot freed.
func (t *tcpServer) drain(sc *loopScratch) {
	for range tcpDrainBatch {
		var f *tcpFrame
		select {
		case f = <-t.ready:
		default:
			return
		}
		c := f.c
		if f.n < 0 {
			t.release(c)
			continue
		}
		t.sock.handlePacket(f.buf[:f.n], c.addr, sc)
		c.free <- f // its own channel has room for all its frames
	}
	t.waker.wake() // more may wait: the next round takes them
}

// release follows a connection's end, after its last packet: its address
// is forgotten as consent expiry forgets one, and its slot is free.
func (t *tcpServer) release(c *tcpConn) {
	t.sock.forgetAddr(c.addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unpend(c)
	if t.slots[c.slot].Load() == c {
		t.slots[c.slot].Store(nil)
		t.free = append(t.free, c.slot)
	}
}

// close stops accepting, closes every connection and waits for their
// goroutines. The listener is closed too.
func (t *tcpServer) close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	close(t.done)
	err := t.ln.Close()
	for i := range t.slots {
		if c := t.slots[i].Load(); c != nil {
			c.close()
		}
	}
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
