//go:build linux

package sipws

import (
	"bufio"
	"bytes"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// TestParkArmFailure: when the watcher cannot take the socket, park says
// so and the connection is never marked parked, so no resume can start a
// second reader beside the one that goes on reading.
func TestParkArmFailure(t *testing.T) {
	srv, err := NewServer(testConfig(), newRecordingHandler(), zap.NewNop())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	w := srv.idleWatcher()
	if w == nil {
		t.Skip("no idle watcher")
	}
	defer srv.stopIdleWatcher()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	defer unix.Close(fd)
	// Already in the watcher's set behind its back: arm's ADD fails.
	if err := w.set.Add(fd, unix.EPOLLIN); err != nil {
		t.Fatalf("epoll add: %v", err)
	}
	c := &Conn{srv: srv, fd: fd, br: bufio.NewReader(bytes.NewReader(nil)), closing: make(chan struct{})}
	if c.park() {
		t.Fatal("park succeeded though the watcher refused the socket")
	}
	if isParked(c) {
		t.Fatal("connection marked parked after a failed arm")
	}
	c.resume() // must do nothing: not parked
}
