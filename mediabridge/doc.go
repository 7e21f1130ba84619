// Package mediabridge owns one media session per call: the browser side is
// the gateway's own WebRTC endpoint (ICE-lite, DTLS-SRTP with pion/dtls and
// pion/srtp, rtcp-mux, BUNDLE; all browser media on one UDP port with one
// read loop) and the core side is plain RTP/AVP on a port pair with
// symmetric-RTP latching. It takes SDP and returns SDP; it knows nothing of SIP.
package mediabridge
