// Package interop tests imsgate against real peers: Kamailio as registrar
// and proxy, SIPp as echo UAS and caller, and headless Chromium running JsSIP
// and SIP.js (and the demo web phone page). A call passes only when media is
// seen to flow at both ends: getStats() in the browser and RTP counted by
// tshark at SIPp's media port.
//
// The tests sit behind the build tag "interop" and need root (for a network
// namespace) plus the Debian packages kamailio, sip-tester, chromium, tshark,
// nftables, coturn, stun-client and the npm packages in package.json:
//
//	npm ci --prefix interop-tests && npm ci --prefix cmd/imsgate/webphone
//	go test -tags interop -count=1 -timeout 20m ./interop-tests/
//
// The test binary re-executes itself in a fresh network namespace where only
// lo is up (unshare -n), so every packet, Chromium's ICE candidates included,
// stays on loopback. Logs, captures and screenshots land in artifacts/.
package interop
