// Package mediabridge owns one media session per call: the browser side is
// the gateway's own WebRTC endpoint (ICE-lite, DTLS-SRTP with pion/dtls and
// pion/srtp, rtcp-mux, BUNDLE; all browser media on one UDP port, and on one
// TCP port for browsers without UDP, RFC 6544 ICE-TCP) and the core
// side is plain RTP/AVP on a port pair with symmetric-RTP latching; one poll
// loop moves every packet of every session. It takes SDP and returns SDP; it knows nothing of SIP.
package mediabridge
