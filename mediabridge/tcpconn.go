package mediabridge

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

const (
	// tcpInFrames is how many frames of one connection may wait for the
	// poll loop; then its reader waits, and TCP slows the browser down.
	tcpInFrames = 4
	// tcpOutFrames is how many frames may wait for the browser; more are
	// dropped, as a full UDP socket drops datagrams. A DTLS flight is a
	// few records; audio is one packet per 20 ms.
	tcpOutFrames = 16
)

// tcpConn is one ICE-TCP connection: a reader that deframes into the poll
// loop's queue and a writer that frames what is queued for the browser.
// Its memory is fixed at accept: a read buffer, tcpInFrames inbound and
// tcpOutFrames outbound packets, about 32 KiB.
type tcpConn struct {
	srv    *tcpServer
	nc     net.Conn
	addr   netip.AddrPort // synthetic: what the packet path knows the browser by
	remote netip.AddrPort // the connection's remote address
	slot   uint32

	fr     frameReader
	inBufs [tcpInFrames][maxFrame]byte
	in     [tcpInFrames]tcpFrame
	free   chan *tcpFrame // inbound frames not with the loop
	end    tcpFrame       // the last word to the loop: this connection ended

	outs    [tcpOutFrames]tcpOut
	out     chan *tcpOut // framed, for the writer
	outFree chan *tcpOut

	verified   atomic.Bool // passed an ICE check (tcpServer.verify)
	pending    bool        // counted among its IP's pending; under srv.mu
	checkTimer *time.Timer

	closeOnce sync.Once
	done      chan struct{}
}

// tcpFrame is one packet from a connection for the loop, in buf[:n], or
// (n < 0) the connection's end.
type tcpFrame struct {
	c   *tcpConn
	n   int
	buf []byte // one of c.inBufs
}

// tcpOut is one framed packet for the browser: as long as the longest
// datagram the shared socket sends.
type tcpOut struct {
	n   int
	buf [frameHeaderLen + maxPacket + srtpOverhead]byte
}

func newTCPConn(srv *tcpServer, nc net.Conn, slot uint32, addr, remote netip.AddrPort) *tcpConn {
	c := &tcpConn{
		srv: srv, nc: nc, addr: addr, remote: remote, slot: slot,
		free:    make(chan *tcpFrame, tcpInFrames),
		out:     make(chan *tcpOut, tcpOutFrames),
		outFree: make(chan *tcpOut, tcpOutFrames),
		pending: true,
		done:    make(chan struct{}),
	}
	c.fr.r = nc
	for i := range c.in {
		c.in[i] = tcpFrame{c: c, buf: c.inBufs[i][:]}
		c.free <- &c.in[i]
	}
	c.end = tcpFrame{c: c, n: -1}
	for i := range c.outs {
		c.outFree <- &c.outs[i]
	}
	c.checkTimer = time.AfterFunc(srv.limits.checkTimeout, func() {
		if !c.verified.Load() {
			c.close()
		}
	})
	return c
}

// read deframes until the connection ends, handing each packet to the
// loop; its last word is the end. A frame over maxFrame ends it.
func (c *tcpConn) read() {
	defer c.srv.wg.Done()
	defer c.ended()
	for {
		pkt, err := c.fr.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		if len(pkt) == 0 {
			continue
		}
		var f *tcpFrame
		select {
		case f = <-c.free:
		case <-c.done:
			return
		}
		f.n = copy(f.buf, pkt)
		c.srv.ready <- f
		c.srv.waker.wake()
	}
}

func (c *tcpConn) readFailed(err error) {
	select {
	case <-c.done:
		return // closed by us
	default:
	}
	switch {
	case errors.Is(err, errFrameTooLarge):
		c.srv.log.Warn("ice-tcp connection closed", zap.Stringer("remote_addr", c.remote), zap.String("reason", err.Error()))
	case errors.Is(err, io.EOF):
	default:
		if ce := c.srv.log.Check(zap.DebugLevel, "ice-tcp connection ended"); ce != nil {
			ce.Write(zap.Stringer("remote_addr", c.remote), zap.Error(err))
		}
	}
}

// ended closes the connection and tells the loop, after its last packet.
func (c *tcpConn) ended() {
	c.close()
	c.checkTimer.Stop()
	c.srv.ready <- &c.end
	c.srv.waker.wake()
}

// write sends what is queued, a frame at a time, until the connection
// closes or the browser takes nothing for the write timeout.
func (c *tcpConn) write() {
	defer c.srv.wg.Done()
	for {
		select {
		case o := <-c.out:
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.limits.writeTimeout))
			_, err := c.nc.Write(o.buf[:o.n])
			c.outFree <- o
			if err != nil {
				c.close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// send queues p for the browser without blocking: a full queue drops it.
func (c *tcpConn) send(p []byte) error {
	if len(p) > maxPacket+srtpOverhead {
		c.srv.dropped.Add(1)
		return errFrameTooLarge
	}
	select {
	case <-c.done:
		c.srv.dropped.Add(1)
		return net.ErrClosed
	default:
	}
	var o *tcpOut
	select {
	case o = <-c.outFree:
	default:
		c.srv.dropped.Add(1)
		return errTCPQueueFull
	}
	o.n = putFrame(o.buf[:], p)
	c.out <- o // room for every frame
	return nil
}

// close is idempotent and does not block: the reader and writer end.
func (c *tcpConn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}
