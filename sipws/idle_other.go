//go:build !linux

package sipws

import (
	"errors"
	"net"
)

// idleWatcher is not available without epoll: a connection's reader
// goroutine waits in its read for its whole life.
type idleWatcher struct{}

func newIdleWatcher() (*idleWatcher, error) {
	return nil, errors.New("parking idle connections needs epoll")
}

func socketFD(net.Conn) int { return -1 }

func (w *idleWatcher) arm(*Conn) error { return errors.New("parking idle connections needs epoll") }
func (w *idleWatcher) forget(*Conn)    {}
func (w *idleWatcher) close()          {}
