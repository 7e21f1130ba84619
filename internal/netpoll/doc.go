// Package netpoll is an epoll set whose one waiter parks in Go's netpoller
// (Linux only). mediabridge's poll loop and sipws's idle watcher each hold
// their sockets in one; neither registers them with the netpoller itself.
package netpoll
