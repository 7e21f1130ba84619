package edge

import (
	"net"
	"sync"
)

// listener is one service's side of the shared port: Accept returns the
// connections the demultiplexer classified for it.
type listener struct {
	addr      net.Addr
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newListener(addr net.Addr) *listener {
	return &listener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// deliver hands c to the service; false (c closed) when it stopped
// accepting or the edge is closing.
func (l *listener) deliver(c net.Conn, stop <-chan struct{}) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
	case <-stop:
	}
	c.Close()
	return false
}
