package natcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
)

// software names the client in its requests (RFC 8489 section 14.14).
var software = stun.NewSoftware("imsgate natcheck")

// prober is one UDP socket of the client. Each test that needs a mapping
// of its own gets its own prober (RFC 5780 section 4.5: a filtering test
// on a socket that has already sent to the alternate address would find
// the door open).
type prober struct {
	conn  *net.UDPConn
	local netip.AddrPort
	buf   []byte
	msg   *stun.Message
}

func listen(local netip.AddrPort) (*prober, error) {
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", local, err)
	}
	return &prober{
		conn:  c,
		local: unmap(c.LocalAddr().(*net.UDPAddr).AddrPort()),
		buf:   make([]byte, 4096),
		msg:   new(stun.Message),
	}, nil
}

func (p *prober) close() { _ = p.conn.Close() }

// answer is the part of a received STUN message the tests read.
type answer struct {
	from  netip.AddrPort // source of the datagram
	class stun.MessageClass
	// mapped is XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS; other is
	// OTHER-ADDRESS, else RFC 3489's CHANGED-ADDRESS; origin is
	// RESPONSE-ORIGIN. Each is zero when absent.
	mapped, other, origin netip.AddrPort
	// code is the ERROR-CODE of an error response.
	code int
}

// request builds a Binding request with a new transaction ID.
func request(setters ...stun.Setter) (*stun.Message, error) {
	all := append([]stun.Setter{stun.TransactionID, stun.BindingRequest, software}, setters...)
	return stun.Build(append(all, stun.Fingerprint)...)
}

// exchange sends req from sender to dst and waits on receiver for the
// message of req's transaction: its response or, when wantRequest (the
// hairpinning test), the request itself. It retransmits as RFC 8489
// section 6.2.1 does, doubling the interval, but from timeout/8 (at most
// the RFC's 500 ms) and giving up after timeout instead of 39.5 s.
func exchange(ctx context.Context, timeout time.Duration, sender *prober, dst netip.AddrPort, req *stun.Message, receiver *prober, wantRequest bool) (answer, error) {
	deadline := time.Now().Add(timeout)
	rto := min(max(timeout/8, 50*time.Millisecond), 500*time.Millisecond)
	stop := context.AfterFunc(ctx, func() { _ = receiver.conn.SetReadDeadline(time.Now()) })
	defer stop()
	next := time.Now()
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return answer{}, fmt.Errorf("%w from %s in %s", errNoAnswer, dst, timeout)
		}
		if !now.Before(next) {
			if _, err := sender.conn.WriteToUDPAddrPort(req.Raw, dst); err != nil {
				return answer{}, fmt.Errorf("send to %s: %w", dst, err)
			}
			next = now.Add(rto)
			rto *= 2
		}
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		a, ok, err := receiver.read(ctx, wake, req.TransactionID, wantRequest)
		if err != nil || ok {
			return a, err
		}
	}
}

// read waits until the deadline for a Binding message of transaction id,
// skipping anything else (late answers of earlier tests among them).
func (p *prober) read(ctx context.Context, until time.Time, id [stun.TransactionIDSize]byte, wantRequest bool) (answer, bool, error) {
	_ = p.conn.SetReadDeadline(until)
	// Checked after setting the deadline, so a cancellation that the
	// AfterFunc's deadline would miss is seen here.
	if err := ctx.Err(); err != nil {
		return answer{}, false, err
	}
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return answer{}, false, ctxErr
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return answer{}, false, nil
			}
			return answer{}, false, fmt.Errorf("read on %s: %w", p.local, err)
		}
		if stun.Decode(p.buf[:n], p.msg) != nil || p.msg.TransactionID != id || p.msg.Type.Method != stun.MethodBinding {
			continue
		}
		if (p.msg.Type.Class == stun.ClassRequest) != wantRequest {
			continue
		}
		return parseAnswer(p.msg, unmap(from)), true, nil
	}
}

func parseAnswer(m *stun.Message, from netip.AddrPort) answer {
	a := answer{from: from, class: m.Type.Class}
	var x stun.XORMappedAddress
	var ma stun.MappedAddress
	if x.GetFrom(m) == nil {
		a.mapped = addrPort(x.IP, x.Port)
	} else if ma.GetFrom(m) == nil {
		a.mapped = addrPort(ma.IP, ma.Port)
	}
	var other stun.OtherAddress
	if other.GetFrom(m) == nil {
		a.other = addrPort(other.IP, other.Port)
	} else if ma.GetFromAs(m, stun.AttrChangedAddress) == nil {
		a.other = addrPort(ma.IP, ma.Port)
	}
	var origin stun.ResponseOrigin
	if origin.GetFrom(m) == nil {
		a.origin = addrPort(origin.IP, origin.Port)
	}
	if m.Type.Class == stun.ClassErrorResponse {
		var ec stun.ErrorCodeAttribute
		a.code = 500 // an error response without ERROR-CODE is still an error
		if ec.GetFrom(m) == nil {
			a.code = int(ec.Code)
		}
	}
	return a
}

func addrPort(ip net.IP, port int) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
