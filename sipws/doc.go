// Package sipws terminates SIP over WebSocket (RFC 7118) for browsers.
//
// It upgrades HTTP requests that ask for the "sip" subprotocol, on plain WS
// and WSS listeners at once (one registry; the WSS certificate reloads
// without a restart), applies the Origin policy, and reads one SIP message
// per WebSocket message (fragments reassembled, no compression), answering
// the RFC 5626 double-CRLF keepalive. Each parsed message goes to a
// Handler; replies are written back on the same Conn. A Conn is named by a
// flow token that stays the same for its whole life, so the b2bua can route
// requests back to it. sipws knows nothing of dialogs or calls.
//
// The intake's abuse limits are always on (WithLimits, configs.Limits):
// TCP connections per source IP, upgrades per source IP and second, the
// time and header bytes an upgrade request may take, SIP requests per
// connection and second, and the header fields and SDP bytes of a message.
// Each refusal is counted by kind (Server.Refusals) and logged once per
// source and kind and log window.
package sipws
