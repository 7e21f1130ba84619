// Package webphone serves the demo web phone: a small JsSIP page of our own
// (embedded) and the JsSIP library read from disk, where npm installed it.
// The library is never embedded or committed: `npm ci --prefix
// cmd/imsgate/webphone` puts it in node_modules.
package webphone
