// Package listenpair binds one port over UDP and TCP, as SIP listens
// (RFC 3261 18: a server listens on both), for the gateway, its demo core,
// the load generator's echo and the tests.
package listenpair

import (
	"fmt"
	"net"
)

// tries is how many ports port 0 tries: the port UDP gets may be taken
// over TCP by someone else.
const tries = 20

// UDPAndTCP binds addr over UDP and TCP on one port (with port 0, one the
// system picks that is free for both).
func UDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	n := 1
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		n = tries
	}
	var err error
	for range n {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return nil, nil, fmt.Errorf("udp: %w", err)
		}
		var ln net.Listener
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
	}
	return nil, nil, fmt.Errorf("tcp: %w", err)
}
