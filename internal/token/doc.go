// Package token checks the signed tokens (JWT, RFC 7519) a web
// application's backend issues to its browsers, which present them at the
// WebSocket upgrade in token mode (auth.mode: token), and holds the SIP
// credentials each token's subject stands for (the credential store), so
// the gateway answers the core's challenges and the browser never sees a
// SIP password.
//
// It knows nothing of SIP transactions or WebSockets: sipws asks Verify at
// the upgrade, b2bua asks the Claims what a session may do and the Store
// for the identity to register and authenticate as.
package token
