//go:build !linux

package turnserver

import (
	"errors"
	"net"
	"net/netip"
)

// pathLoop is a goroutine per socket where there is no epoll, each
// running the same handlers under dataPath.mu.
type pathLoop struct {
	listenDone chan struct{}
}

func (l *pathLoop) start(d *dataPath) error {
	l.listenDone = make(chan struct{})
	go func() {
		defer close(l.listenDone)
		l.read(d, d.listen.Conn(), func(pkt []byte, from netip.AddrPort, _ []byte) { d.fromClient(pkt, from) })
	}()
	return nil
}

// stop closes the listener and waits for its reader; each relay's reader
// ends when its relay closes.
func (l *pathLoop) stop(d *dataPath) {
	_ = d.listen.Close()
	<-l.listenDone
}

func (l *pathLoop) add(d *dataPath, r *pathRelay) error {
	go func() {
		l.read(d, r.sock.Conn(), func(pkt []byte, from netip.AddrPort, out []byte) { d.fromPeer(r, pkt, from, out) })
	}()
	return nil
}

// remove: the relay's reader ends when its socket closes, which follows.
func (l *pathLoop) remove(*dataPath, *pathRelay) {}

func (l *pathLoop) read(d *dataPath, conn *net.UDPConn, handle func([]byte, netip.AddrPort, []byte)) {
	buf := make([]byte, maxDatagram)
	out := make([]byte, channelDataHeader+maxDatagram)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		d.mu.Lock()
		handle(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), out)
		d.mu.Unlock()
	}
}
