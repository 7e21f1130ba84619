// Package load is imsgate's load generator: WebRTC callers (webua, each over
// its own WebSocket) against a gateway with an echo UAS behind it, idle
// WebSocket clients for memory per connection, and the /proc readings that
// say what the gateway, the echo target and the generator itself cost.
// cmd/imsgate-load is its command line; interop-tests/bench drives that
// command against imsgate and against Kamailio + rtpengine.
package load
