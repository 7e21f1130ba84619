// Package turnserver is the gateway's embedded TURN server (RFC 8656) for
// browsers behind networks that block UDP, built on pion/turn's server.
//
// pion speaks the protocol; this package decides who may use it and where
// to: long-term and TURN REST credentials (auth.go), which peers a relay may
// reach (policy.go, permits.go), how many allocations a user and the server
// may hold (quota.go), which ports relays take (relay.go), and how long a TCP
// or TLS connection may stay without an allocation (stream.go). Where pion
// answers a refusal with a code other than RFC 8656's, screen.go answers in
// its place, through the connection wrappers pion's own examples suggest
// (examples/turn-server/add-software-attribute).
//
// Relays carry UDP only: RFC 6062 TCP allocations (Connect to a peer) are
// refused, since browsers never ask for them and each would make the server
// a TCP proxy with goroutines of its own.
package turnserver
