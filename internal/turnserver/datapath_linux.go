//go:build linux

package turnserver

import (
	"fmt"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/imsgate/imsgate/internal/netpoll"
	"github.com/imsgate/imsgate/internal/rawudp"
)

// pathBatch is the most datagrams one recvmmsg(2) takes off the listener
// when it is backlogged.
const pathBatch = 32

// pathEvents is how many ready sockets one epoll_wait(2) returns at most.
const pathEvents = 256

// pathLoop is the data path's one goroutine: it waits on one epoll set
// (parked in Go's netpoller, as mediabridge's poll loop) holding the
// listener and every relay of a UDP client, level-triggered, and runs each
// datagram's handler. A thread blocked in epoll_wait instead was measured
// worse: sysmon, seeing a P held in a syscall, never sleeps deeply and
// cost more than the datagrams (docs/TURN-BENCH.md).
type pathLoop struct {
	set    *netpoll.Set
	relays map[int32]*pathRelay // by descriptor; under dataPath.mu
	done   chan struct{}
}

func (l *pathLoop) start(d *dataPath) error {
	set, err := netpoll.New("turn-epoll", pathEvents)
	if err != nil {
		return err
	}
	if err := set.Add(d.listen.FD(), unix.EPOLLIN); err != nil {
		_ = set.Close()
		return fmt.Errorf("poll turn listener: %w", err)
	}
	l.set, l.relays, l.done = set, map[int32]*pathRelay{}, make(chan struct{})
	go l.run(d)
	return nil
}

// stop ends the loop, then closes the listener it read.
func (l *pathLoop) stop(d *dataPath) {
	_ = l.set.Close()
	<-l.done
	_ = d.listen.Close()
}

func (l *pathLoop) add(d *dataPath, r *pathRelay) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := l.set.Add(r.sock.FD(), unix.EPOLLIN); err != nil {
		return fmt.Errorf("poll turn relay: %w", err)
	}
	l.relays[int32(r.sock.FD())] = r //nolint:gosec // a descriptor
	return nil
}

// remove: once it returns (it waits out the round, holding dataPath.mu)
// the loop neither reads r nor finds it for a stale event.
func (l *pathLoop) remove(d *dataPath, r *pathRelay) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fd := int32(r.sock.FD()) //nolint:gosec // a descriptor
	if l.relays[fd] == r {
		delete(l.relays, fd)
		l.set.Remove(r.sock.FD())
	}
}

func (l *pathLoop) run(d *dataPath) {
	defer close(l.done)
	reader := rawudp.NewBatchReader(pathBatch, maxDatagram)
	out := make([]byte, channelDataHeader+maxDatagram)
	listenFD := int32(d.listen.FD()) //nolint:gosec // a descriptor
	var round, listenReady uint64
	for {
		events, err := l.set.Wait()
		if err != nil {
			select {
			case <-d.closed:
			default:
				d.log.Error("turn data path ended", zap.Error(err))
			}
			return
		}
		round++
		d.mu.Lock()
		for i := range events {
			fd := events[i].Fd
			if fd == listenFD {
				// Ready two rounds running: backlogged, take what queued
				// in one recvmmsg; a lone datagram is cheaper with recvfrom.
				burst := listenReady == round-1
				listenReady = round
				for j := range reader.Read(int(fd), burst) {
					pkt, from := reader.Packet(j)
					d.fromClient(pkt, from)
				}
				continue
			}
			r := l.relays[fd]
			if r == nil {
				continue
			}
			burst := r.ready == round-1
			r.ready = round
			for j := range reader.Read(int(fd), burst) {
				pkt, from := reader.Packet(j)
				d.fromPeer(r, pkt, from, out)
			}
		}
		d.mu.Unlock()
	}
}
