package load

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

// maxReasonLen keeps failure reasons short enough to count and print.
const maxReasonLen = 60

// failureReason turns an error into a short, countable reason: a SIP
// status, a well-known network condition, or the error text with numbers
// (ports, addresses, ids) blanked so equal failures count together.
func failureReason(stage string, err error) string {
	var se *webua.StatusError
	switch {
	case errors.As(err, &se):
		return stage + ": status " + strconv.Itoa(se.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return stage + ": timeout"
	case errors.Is(err, context.Canceled):
		return stage + ": canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return stage + ": connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return stage + ": no free source port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return stage + ": too many open files"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return stage + ": connection closed"
	}
	text := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return 'N'
		}
		return r
	}, err.Error())
	if len(text) > maxReasonLen {
		text = text[:maxReasonLen]
	}
	return stage + ": " + text
}

// failures counts reasons from many goroutines.
type failures struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
}

func (f *failures) add(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = make(map[string]int)
	}
	f.counts[reason]++
	f.total++
}

func (f *failures) snapshot() (map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out, f.total
}
