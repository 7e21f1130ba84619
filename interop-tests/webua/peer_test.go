package webua

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// wsPeer is a WebSocket server on 127.0.0.1:0 speaking the sip subprotocol;
// serve runs per connection on a goroutine close waits for.
type wsPeer struct {
	t     *testing.T
	url   string
	srv   *http.Server
	serve func(conn *peerConn)

	mu    sync.Mutex
	conns []*peerConn
	wg    sync.WaitGroup
	done  chan struct{}
}

// peerConn guards writes: gorilla allows one writer at a time.
type peerConn struct {
	*websocket.Conn
	writeMu sync.Mutex
}

func (c *peerConn) write(data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.WriteMessage(websocket.TextMessage, data)
}

func newWSPeer(t *testing.T, serve func(conn *peerConn)) *wsPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &wsPeer{t: t, url: "ws://" + ln.Addr().String() + "/", serve: serve, done: make(chan struct{})}
	upgrader := websocket.Upgrader{Subprotocols: []string{"sip"}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conn := &peerConn{Conn: ws}
		p.mu.Lock()
		p.conns = append(p.conns, conn)
		p.wg.Add(1)
		p.mu.Unlock()
		defer p.wg.Done()
		p.serve(conn)
	})}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *wsPeer) others(self *peerConn) []*peerConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*peerConn, 0, len(p.conns))
	for _, c := range p.conns {
		if c != self {
			out = append(out, c)
		}
	}
	return out
}

func (p *wsPeer) close() {
	_ = p.srv.Close() // hijacked WebSockets are ours to close
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	<-p.done
}

// newRelay forwards every frame to every other connection, unchanged: each
// UA accepts what is addressed to it by Call-ID and Via branch.
func newRelay(t *testing.T) *wsPeer {
	var p *wsPeer
	p = newWSPeer(t, func(conn *peerConn) {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			for _, other := range p.others(conn) {
				_ = other.write(data)
			}
		}
	})
	return p
}
