//go:build interop

package interop

import (
	"errors"
	"net"
	"syscall"
)

// inUse reports whether addr is already bound for network.
func inUse(network, addr string) bool {
	var err error
	switch network {
	case "udp":
		var c net.PacketConn
		c, err = net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
		}
	default:
		var l net.Listener
		l, err = net.Listen("tcp", addr)
		if err == nil {
			l.Close()
		}
	}
	return errors.Is(err, syscall.EADDRINUSE)
}
