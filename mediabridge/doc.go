// Package mediabridge owns one media session per call: the browser side is
// WebRTC (pion, ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE, all browser media on
// one UDP port) and the core side is plain RTP/AVP on a port pair with
// symmetric-RTP latching. It takes SDP and returns SDP; it knows nothing of SIP.
package mediabridge
