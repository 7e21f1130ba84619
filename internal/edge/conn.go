package edge

import (
	"bytes"
	"io"
	"net"
)

// peekedConn is a connection whose first bytes the demultiplexer has read:
// they are read again before the rest of the stream.
type peekedConn struct {
	net.Conn
	head *bytes.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.head != nil && c.head.Len() > 0 {
		return c.head.Read(p)
	}
	return c.Conn.Read(p)
}

// SocketConn is the connection under c once its replayed bytes are read,
// so a reader that waits on the socket itself (sipws parks idle WebSockets
// in epoll) misses nothing; until then c itself.
func (c *peekedConn) SocketConn() net.Conn {
	if c.head != nil && c.head.Len() > 0 {
		return c
	}
	return c.Conn
}

// recordingConn hands a TLS server the bytes it reads from r and refuses
// writes: the ClientHello is read, recorded and nothing is answered.
type recordingConn struct {
	net.Conn
	r io.Reader
}

func (c recordingConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c recordingConn) Write(p []byte) (int, error) { return 0, io.ErrClosedPipe }
