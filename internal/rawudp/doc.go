// Package rawudp is the UDP socket of the packet paths that read in their
// own poll loop (mediabridge's media, the TURN server's relays): a
// non-blocking socket outside Go's netpoller, sends that never block, and a
// reader that takes one datagram with recvfrom(2) or a backlog with
// recvmmsg(2) without allocating. Elsewhere than Linux a Socket is a
// net.UDPConn and the readers read it.
package rawudp
