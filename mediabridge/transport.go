package mediabridge

import "net/netip"

// Transport is how a browser's media reaches the gateway. Zero is Unknown.
type Transport int

const (
	TransportUnknown Transport = iota
	TransportUDP               // the shared UDP socket (media.webrtc_port)
	TransportTCP               // ICE-TCP, RFC 6544 (media.webrtc_tcp_port)
)

func (t Transport) String() string {
	switch t {
	case TransportUDP:
		return "udp"
	case TransportTCP:
		return "tcp"
	}
	return "unknown"
}

// path is the transport and the browser's address that media and DTLS go
// to: for ICE-TCP the connection's remote address, not the synthetic one
// the packet path knows it by. Unknown until a check passed, and again once
// the address is forgotten (consent lost, connection closed).
func (ep *webEndpoint) path() (Transport, netip.AddrPort) {
	addr, ok := ep.remoteAddr()
	if !ok {
		return TransportUnknown, netip.AddrPort{}
	}
	if !isTCPAddr(addr) {
		return TransportUDP, addr
	}
	if remote, ok := ep.sock.tcp.remoteOf(addr); ok {
		return TransportTCP, remote
	}
	return TransportUnknown, netip.AddrPort{} // closed meanwhile
}

// WebPath is the transport the browser's media uses and the browser's
// address on it (the TCP connection's remote address for ICE-TCP):
// TransportUnknown until an ICE check passed, and again once the browser
// is gone (RFC 7675 consent lost, its TCP connection closed).
func (s *Session) WebPath() (Transport, netip.AddrPort) { return s.ep.path() }
