//go:build interop

package interop

import (
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// impairment is what the relay does to each direction of a path: drop
// this share of the RTP packets at random, and delay every datagram by
// Delay plus a uniform draw in [-Jitter, +Jitter], as tc netem's "loss"
// and "delay D J" do.
type impairment struct {
	Loss          float64
	Delay, Jitter time.Duration
}

// impairRelay stands on a path between the browser and the gateway's WebRTC
// port and impairs it both ways. It is there because tc netem cannot be:
// the test machines' kernels are built without sch_netem
// (CONFIG_NET_SCH_NETEM), and tc answers "Specified qdisc kind is
// unknown". The browser reaches it through its SDP (browserOptions.
// MediaVia); the gateway sees the relay's address as the browser's, as it
// would a NAT's. STUN, DTLS and RTCP are delayed but never dropped, so only
// RTP loss is injected and the figures compare with what was.
type impairRelay struct {
	conn   *net.UDPConn // where the browser sends
	target netip.AddrPort
	imp    impairment

	mu    sync.Mutex
	rng   *rand.Rand
	peers map[netip.AddrPort]*net.UDPConn // the browser's address → our socket toward the gateway
	// toGateway and toBrowser are what happened to each direction's RTP.
	toGateway, toBrowser impairedFlow
	wg                   sync.WaitGroup // readers and datagrams in flight
}

// impairedFlow is one direction's RTP as the relay treated it.
type impairedFlow struct {
	Sent, Dropped int
	// lastDelay and sumDeltaMs give the mean change in the delay the relay
	// held consecutive packets for: what RFC 3550's jitter estimates.
	lastDelay  time.Duration
	sumDeltaMs float64
	deltas     int
}

// LossPercent is the share of RTP dropped.
func (f impairedFlow) LossPercent() float64 {
	if f.Sent+f.Dropped == 0 {
		return 0
	}
	return 100 * float64(f.Dropped) / float64(f.Sent+f.Dropped)
}

// JitterMs is the mean |D| of RFC 3550 A.8 that the relay added.
func (f impairedFlow) JitterMs() float64 {
	if f.deltas == 0 {
		return 0
	}
	return f.sumDeltaMs / float64(f.deltas)
}

func startImpairRelay(t *testing.T, listen, target string, imp impairment) *impairRelay {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(listen)))
	if err != nil {
		t.Fatalf("impairing relay: %v", err)
	}
	r := &impairRelay{conn: conn, target: netip.MustParseAddrPort(target), imp: imp,
		rng: rand.New(rand.NewPCG(1, 2)), peers: map[netip.AddrPort]*net.UDPConn{}}
	r.wg.Add(1)
	go r.fromBrowsers()
	t.Cleanup(r.close)
	return r
}

// fromBrowsers relays what browsers send, each through its own socket
// toward the gateway.
func (r *impairRelay) fromBrowsers() {
	defer r.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		up, err := r.upstream(from)
		if err != nil {
			continue
		}
		r.pass(&r.toGateway, buf[:n], func(b []byte) { _, _ = up.WriteToUDPAddrPort(b, r.target) })
	}
}

// upstream is browser's socket toward the gateway, opened at its first
// datagram with a reader that relays the gateway's answers back.
func (r *impairRelay) upstream(browser netip.AddrPort) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up := r.peers[browser]; up != nil {
		return up, nil
	}
	up, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r.peers[browser] = up
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := up.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // an ICMP error from a gateway not yet listening
			}
			r.pass(&r.toBrowser, buf[:n], func(b []byte) { _, _ = r.conn.WriteToUDPAddrPort(b, browser) })
		}
	}()
	return up, nil
}

// pass drops an RTP packet with the loss's chance, and sends anything else
// after its delay.
func (r *impairRelay) pass(flow *impairedFlow, pkt []byte, send func([]byte)) {
	rtp := len(pkt) > 1 && pkt[0] >= 128 && pkt[0] <= 191 && (pkt[1] < 192 || pkt[1] > 223)
	r.mu.Lock()
	drop := rtp && r.rng.Float64() < r.imp.Loss
	delay := r.imp.Delay
	if r.imp.Jitter > 0 {
		delay += time.Duration((2*r.rng.Float64() - 1) * float64(r.imp.Jitter))
	}
	if drop {
		flow.Dropped++
	}
	r.mu.Unlock()
	if drop {
		return
	}
	b := append([]byte(nil), pkt...)
	arrived := time.Now()
	r.wg.Add(1)
	time.AfterFunc(delay, func() {
		defer r.wg.Done()
		if rtp {
			// The delay as it came out, timer lateness included, in the
			// order the far end receives the packets.
			r.mu.Lock()
			held := time.Since(arrived)
			if flow.Sent > 0 {
				flow.sumDeltaMs += math.Abs(float64(held-flow.lastDelay)) / float64(time.Millisecond)
				flow.deltas++
			}
			flow.Sent++
			flow.lastDelay = held
			r.mu.Unlock()
		}
		send(b)
	})
}

// flows is what the relay did to each direction so far.
func (r *impairRelay) flows() (toGateway, toBrowser impairedFlow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.toGateway, r.toBrowser
}

func (r *impairRelay) close() {
	_ = r.conn.Close()
	r.mu.Lock()
	for _, up := range r.peers {
		_ = up.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
