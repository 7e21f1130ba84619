// Package stunserver answers STUN Binding requests (RFC 8489) over UDP and
// TCP, and, given a second IP address, the NAT behaviour discovery usage of
// RFC 5780: four UDP sockets (two IPs by two ports), OTHER-ADDRESS and
// RESPONSE-ORIGIN in every answer, CHANGE-REQUEST, RESPONSE-PORT and
// PADDING. Requests without the magic cookie (RFC 3489 clients such as
// Debian's stun) get an RFC 3489 answer.
//
// Messages are encoded and decoded with pion/stun; this package adds only
// the RFC 5780 attributes pion has no typed form for (attrs.go). The
// request handler (handle.go) is a pure function of the request bytes and
// where they came from, so it is fuzzed on its own; udp.go and tcp.go move
// bytes.
package stunserver
