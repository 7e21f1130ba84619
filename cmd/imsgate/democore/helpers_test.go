package democore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/imsgate/imsgate/cmd/imsgate/democore"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

const domain = "imsgate.test"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger is silent unless DEMOCORE_DEBUG is set: sipgo may log from its
// own goroutines, which zaptest would report after a test ends.
func testLogger() *zap.Logger {
	if os.Getenv("DEMOCORE_DEBUG") == "" {
		return zap.NewNop()
	}
	l, _ := zap.NewDevelopment()
	return l
}

type testCore struct {
	*democore.Core
	udp net.PacketConn
	tcp net.Listener
}

func startCore(t *testing.T, opts democore.Options) *testCore {
	t.Helper()
	if opts.Domain == "" {
		opts.Domain = domain
	}
	if opts.MediaIP == "" {
		opts.MediaIP = "127.0.0.1"
	}
	core, err := democore.New(opts, testLogger())
	if err != nil {
		t.Fatalf("new core: %v", err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen tcp: %v", err)
	}
	if err := core.Start(udp, tcp); err != nil {
		t.Fatalf("start core: %v", err)
	}
	t.Cleanup(func() {
		if err := core.Close(); err != nil {
			t.Errorf("close core: %v", err)
		}
	})
	return &testCore{Core: core, udp: udp, tcp: tcp}
}

// uri is the core's address as a SIP URI with the given user.
func (c *testCore) uri(user string) sip.Uri {
	a := c.udp.LocalAddr().(*net.UDPAddr)
	return sip.Uri{Scheme: "sip", User: user, Host: a.IP.String(), Port: a.Port}
}

// peer is a sipgo user agent on 127.0.0.1 playing the gateway or a phone.
type peer struct {
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	cli  *sipgo.Client
	conn net.PacketConn
	user string
}

func newPeer(t *testing.T, user string, handlers func(*sipgo.Server)) *peer {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatalf("peer ua: %v", err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatalf("peer server: %v", err)
	}
	if handlers != nil {
		handlers(srv)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peer listen: %v", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		t.Fatalf("peer client: %v", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.ServeUDP(conn)
	}()
	t.Cleanup(func() {
		// Same order as Core.Close: stop reading, close, then sweep the
		// sockets sipgo opened for messages still in flight.
		_ = conn.Close()
		<-served
		_ = ua.Close()
		for i := 0; i < 10; i++ {
			_ = ua.TransportLayer().Pool("udp").Clear()
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Bounded wait for sipgo to pool the listener our client sends from.
	for i := 0; ; i++ {
		if c, err := ua.TransportLayer().GetConnection("udp", conn.LocalAddr().String()); err == nil {
			_, _ = c.TryClose()
			break
		}
		if i == 2000 {
			t.Fatalf("peer listener not served")
		}
		time.Sleep(time.Millisecond)
	}
	return &peer{ua: ua, srv: srv, cli: cli, conn: conn, user: user}
}

func (p *peer) contact() *sip.Uri {
	a := p.conn.LocalAddr().(*net.UDPAddr)
	return &sip.Uri{Scheme: "sip", User: p.user, Host: a.IP.String(), Port: a.Port}
}

func (p *peer) aor() string { return "sip:" + p.user + "@" + domain }

// register sends REGISTER for the peer's AoR with the given contact values
// and Expires, answering one digest challenge when password is set.
func (p *peer) register(ctx context.Context, core *testCore, contacts []string, expires int, password string) (*sip.Response, error) {
	recipient := sip.Uri{Scheme: "sip", Host: core.uri("").Host, Port: core.uri("").Port}
	req := sip.NewRequest(sip.REGISTER, recipient)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: domain}}
	req.AppendHeader(to)
	req.AppendHeader(&sip.FromHeader{Address: to.Address, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}})
	for _, c := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == sip.StatusUnauthorized && password != "" {
		return p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.user, Password: password})
	}
	return res, nil
}

// rtpSocket is a peer's media socket.
type rtpSocket struct {
	conn net.PacketConn
}

func newRTPSocket(t *testing.T) *rtpSocket {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen rtp: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rtpSocket{conn: conn}
}

func (s *rtpSocket) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// offer is a browser-gateway style RTP/AVP offer.
func (s *rtpSocket) offer(formats string, extra string) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(s.port()) + " RTP/AVP " + formats + "\r\n" + extra + "a=sendrecv\r\n")
}

// sendRTP sends n PCMU packets to dst.
func (s *rtpSocket) sendRTP(t *testing.T, dst *net.UDPAddr, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 0x1234}, Payload: make([]byte, 160)}
		b, err := pkt.Marshal()
		if err != nil {
			t.Fatalf("marshal rtp: %v", err)
		}
		if _, err := s.conn.WriteTo(b, dst); err != nil {
			t.Fatalf("send rtp: %v", err)
		}
	}
}

// readRTP reads n RTP packets or fails at the deadline.
func (s *rtpSocket) readRTP(t *testing.T, n int, deadline time.Duration) (from net.Addr) {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(deadline))
	defer func() { _ = s.conn.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 1500)
	for i := 0; i < n; i++ {
		k, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read rtp %d of %d: %v", i+1, n, err)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:k]); err != nil {
			t.Fatalf("unmarshal rtp: %v", err)
		}
		from = addr
	}
	return from
}

// echoRTP sends back every packet until the socket closes or stop closes.
func (s *rtpSocket) echoRTP(stop <-chan struct{}) {
	buf := make([]byte, 1500)
	for {
		select {
		case <-stop:
			return
		default:
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		_, _ = s.conn.WriteTo(buf[:n], addr)
	}
}

// sdpAudioAddr returns the c=/m=audio address of an SDP body.
func sdpAudioAddr(t *testing.T, body []byte) (*net.UDPAddr, *sdp.SessionDescription) {
	t.Helper()
	var desc sdp.SessionDescription
	if err := desc.Unmarshal(body); err != nil {
		t.Fatalf("parse sdp: %v\n%s", err, body)
	}
	for _, m := range desc.MediaDescriptions {
		if m.MediaName.Media == "audio" && m.MediaName.Port.Value != 0 {
			c := m.ConnectionInformation
			if c == nil {
				c = desc.ConnectionInformation
			}
			return &net.UDPAddr{IP: net.ParseIP(c.Address.Address), Port: m.MediaName.Port.Value}, &desc
		}
	}
	t.Fatalf("no audio in sdp:\n%s", body)
	return nil, nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor waits on ch or fails after 5 s.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// eventually polls cond until true or fails after 5 s (state kept by the
// core has no channel to wait on).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
