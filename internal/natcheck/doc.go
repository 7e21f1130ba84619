// Package natcheck tells what NAT (if any) stands between this host and a
// STUN server, by the tests of RFC 5780 section 4: mapping behaviour
// (section 4.3), filtering behaviour (4.4), binding lifetime (4.6) and
// hairpinning (4.7), against a server that supports RFC 5780 (imsgate's
// own stunserver, or coturn's turnserver with two listening IPs). It
// gives the answer in RFC 4787 terms, in the older RFC 3489 names ("full
// cone", "symmetric", ...), and as advice for media: direct, TURN over UDP,
// or TURN over TCP/TLS.
//
// Main is the command line front end (imsgate natcheck).
package natcheck
