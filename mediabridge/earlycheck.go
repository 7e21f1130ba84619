package mediabridge

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
)

// earlyCheckConn is the ICE mux socket with one addition. On a call to the
// browser the gateway offers first, and the browser starts its connectivity
// checks as soon as it has answered — before its answer (and so its ICE
// username fragment) reaches the gateway in the 200 OK. pion discards such a
// check; Chrome then sees its first checks go unanswered and sends the
// nominating one only about a second later: the first second of the call's
// audio was lost. So an early check whose MESSAGE-INTEGRITY proves it was
// made with our password (RFC 8445 7.2.2) is answered here at once, the way
// an ICE-lite agent answers any valid check, and the latest one is read again
// by pion once the session has the browser's answer.
type earlyCheckConn struct {
	*net.UDPConn

	waitingN atomic.Int32 // sessions waiting; zero keeps STUN parsing off the media path
	mu       sync.Mutex
	waiting  map[string]*waitingSession // by local ufrag
	replay   []heldCheck
	woken    atomic.Bool
}

// stunMagicCookie marks a STUN message (RFC 5389 6).
const stunMagicCookie = 0x2112A442

type waitingSession struct {
	pwd  string     // our ICE password: checks are signed with it
	held *heldCheck // the latest early check, nil: none yet
}

type heldCheck struct {
	data []byte
	from netip.AddrPort
}

func newEarlyCheckConn(c *net.UDPConn) *earlyCheckConn {
	return &earlyCheckConn{UDPConn: c, waiting: map[string]*waitingSession{}}
}

// await starts answering and keeping early checks addressed to localUfrag.
func (c *earlyCheckConn) await(localUfrag, localPwd string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.waiting[localUfrag]; !ok {
		c.waiting[localUfrag] = &waitingSession{pwd: localPwd}
		c.waitingN.Add(1)
	}
}

// release stops keeping checks for localUfrag and, when replay is set, reads
// the kept one again (the session now knows the browser's credentials).
func (c *earlyCheckConn) release(localUfrag string, replay bool) {
	c.mu.Lock()
	var held *heldCheck
	if w, ok := c.waiting[localUfrag]; ok {
		held = w.held
		delete(c.waiting, localUfrag)
		c.waitingN.Add(-1)
	}
	if replay && held != nil {
		c.replay = append(c.replay, *held)
	}
	c.mu.Unlock()
	if replay && held != nil {
		// Wake a read blocked on the socket so the check goes in now.
		c.woken.Store(true)
		_ = c.UDPConn.SetReadDeadline(time.Now())
	}
}

// ReadFromAddrPort is what pion's mux reads through (allocation-free).
func (c *earlyCheckConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		if c.woken.Load() {
			c.mu.Lock()
			if len(c.replay) > 0 {
				h := c.replay[0]
				c.replay = c.replay[1:]
				c.mu.Unlock()
				return copy(b, h.data), h.from, nil
			}
			c.woken.Store(false)
			c.mu.Unlock()
			_ = c.UDPConn.SetReadDeadline(time.Time{})
		}
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && c.woken.Load() {
				continue
			}
			return n, from, err
		}
		if c.waitingN.Load() > 0 {
			c.keepIfEarly(b[:n], from)
		}
		return n, from, nil
	}
}

// WriteToAddrPort lets pion's mux write allocation-free.
func (c *earlyCheckConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// ReadFrom serves callers that do not use the AddrPort form.
func (c *earlyCheckConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// keepIfEarly answers and keeps a STUN Binding request whose USERNAME names
// a waiting session (RFC 8445 7.2.2: "local-ufrag:remote-ufrag" from the
// sender's view, so the first part is ours).
func (c *earlyCheckConn) keepIfEarly(p []byte, from netip.AddrPort) {
	if len(p) < 20 || binary.BigEndian.Uint16(p[0:2]) != 0x0001 || binary.BigEndian.Uint32(p[4:8]) != stunMagicCookie {
		return
	}
	msg := &stun.Message{Raw: append([]byte(nil), p...)}
	if err := msg.Decode(); err != nil {
		return
	}
	var user stun.Username
	if err := user.GetFrom(msg); err != nil {
		return
	}
	ours, _, ok := strings.Cut(user.String(), ":")
	if !ok {
		return
	}
	c.mu.Lock()
	w, waiting := c.waiting[ours]
	if !waiting || stun.NewShortTermIntegrity(w.pwd).Check(msg) != nil {
		c.mu.Unlock()
		return
	}
	w.held = &heldCheck{data: msg.Raw, from: from}
	pwd := w.pwd
	c.mu.Unlock()
	res, err := stun.Build(msg, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	if err != nil {
		return
	}
	_, _ = c.UDPConn.WriteToUDPAddrPort(res.Raw, from)
}
