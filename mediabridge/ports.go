package mediabridge

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/imsgate/imsgate/internal/rawudp"
)

// portAllocator hands out RTP/RTCP port pairs (even RTP port, RTCP on the
// next odd port, RFC 3550 §11) from a range, round robin so a freed pair is
// not reused at once by the next call (late packets of the old call).
type portAllocator struct {
	bindIP netip.Addr
	first  int // first even port
	pairs  int

	mu    sync.Mutex
	next  int
	inUse map[int]bool
}

func newPortAllocator(bindIP netip.Addr, lo, hi int) *portAllocator {
	first := lo + lo%2
	return &portAllocator{
		bindIP: bindIP,
		first:  first,
		pairs:  (hi - first + 1) / 2,
		inUse:  map[int]bool{},
	}
}

// portPair is a bound RTP socket and its RTCP companion.
type portPair struct {
	rtp, rtcp *rawudp.Socket
	port      int
}

// allocate binds the next free pair; a port taken by another process is
// skipped. It tries each pair at most once.
func (a *portAllocator) allocate() (*portPair, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range a.pairs {
		port := a.first + 2*a.next
		a.next = (a.next + 1) % a.pairs
		if a.inUse[port] {
			continue
		}
		pair, err := a.bind(port)
		if err != nil {
			continue
		}
		a.inUse[port] = true
		return pair, nil
	}
	return nil, errPortsExhausted
}

func (a *portAllocator) bind(port int) (*portPair, error) {
	rtp, err := rawudp.Listen(netip.AddrPortFrom(a.bindIP, uint16(port)), 0)
	if err != nil {
		return nil, fmt.Errorf("bind rtp %d: %w", port, err)
	}
	rtcp, err := rawudp.Listen(netip.AddrPortFrom(a.bindIP, uint16(port+1)), 0)
	if err != nil {
		_ = rtp.Close()
		return nil, fmt.Errorf("bind rtcp %d: %w", port+1, err)
	}
	return &portPair{rtp: rtp, rtcp: rtcp, port: port}, nil
}

// release closes the sockets and returns the pair to the pool.
func (a *portAllocator) release(p *portPair) error {
	errRTP := p.rtp.Close()
	errRTCP := p.rtcp.Close()
	a.mu.Lock()
	delete(a.inUse, p.port)
	a.mu.Unlock()
	if errRTP != nil {
		return fmt.Errorf("close rtp socket: %w", errRTP)
	}
	if errRTCP != nil {
		return fmt.Errorf("close rtcp socket: %w", errRTCP)
	}
	return nil
}

// used is the number of port pairs held by sessions.
func (a *portAllocator) used() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inUse)
}
