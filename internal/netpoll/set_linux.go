//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by every method once Close has run.
var ErrClosed = errors.New("netpoll: set closed")

// Set is an epoll instance keyed by descriptor: an event carries the
// descriptor it was added with. Add, Modify and Remove may be called from
// any goroutine; Wait from one goroutine only.
//
// Wait parks in Go's netpoller, which watches the epoll descriptor itself:
// a goroutine, not an OS thread blocked in epoll_wait, waits out a quiet
// spell, and the runtime wakes it as it wakes any network reader.
type Set struct {
	epfd int
	file *os.File        // epfd, for parking in the netpoller
	rc   syscall.RawConn // of file

	mu     sync.Mutex // keeps the descriptor from closing under an epoll_ctl
	closed bool

	// Used by the waiting goroutine only.
	events []unix.EpollEvent
	pollFn func(uintptr) bool // s.poll, bound once so a Wait allocates nothing
	ready  int
	errno  unix.Errno
}

// New makes a set whose Wait returns at most maxEvents events at a time.
func New(name string, maxEvents int) (*Set, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	file := os.NewFile(uintptr(epfd), name)
	rc, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	s := &Set{epfd: epfd, file: file, rc: rc, events: make([]unix.EpollEvent, maxEvents)}
	s.pollFn = s.poll
	return s, nil
}

// Add watches fd for events (unix.EPOLLIN and the like).
func (s *Set) Add(fd int, events uint32) error { return s.ctl(unix.EPOLL_CTL_ADD, fd, events) }

// Modify changes what fd is watched for; it re-arms a one-shot fd.
func (s *Set) Modify(fd int, events uint32) error { return s.ctl(unix.EPOLL_CTL_MOD, fd, events) }

// Remove stops watching fd. It must run before fd is closed: the number is
// then reused by the next descriptor.
func (s *Set) Remove(fd int) { _ = s.ctl(unix.EPOLL_CTL_DEL, fd, 0) }

func (s *Set) ctl(op, fd int, events uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := unix.EpollCtl(s.epfd, op, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl fd %d: %w", fd, err)
	}
	return nil
}

// Wait returns the ready descriptors' events, parking until there are
// some; the slice is reused by the next Wait. After Close it returns an
// error.
func (s *Set) Wait() ([]unix.EpollEvent, error) {
	if err := s.rc.Read(s.pollFn); err != nil {
		return nil, err
	}
	if s.errno != 0 {
		return nil, s.errno
	}
	return s.events[:s.ready], nil
}

// poll is the RawConn.Read callback: false means "nothing ready, park".
func (s *Set) poll(uintptr) bool {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(s.epfd),
			uintptr(unsafe.Pointer(&s.events[0])), uintptr(len(s.events)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		s.ready, s.errno = int(r), e
		return s.ready > 0 || e != 0
	}
}

// Close wakes a parked Wait, which then returns an error, and closes the
// set; the descriptors in it are left open.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.file.Close()
}
