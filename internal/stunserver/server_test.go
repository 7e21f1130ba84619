package stunserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// wait bounds every read that expects an answer; quiet is how long a test
// listens for an answer that must not come.
const (
	wait  = 3 * time.Second
	quiet = 300 * time.Millisecond
)

// newServer starts a server for one test and closes it, checking that no
// goroutine outlives it.
func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	if cfg.Software == "" {
		cfg.Software = testSoftware
	}
	s, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		goleak.VerifyNone(t, opt)
	})
	return s
}

func rfc5780Server(t *testing.T) *Server {
	return newServer(t, Config{Listen: "127.0.0.1:0", AlternateIP: "127.0.0.2"})
}

func udpClient(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func localAddr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// receive reads one datagram within d; ok is false when none came.
func receive(t *testing.T, c *net.UDPConn, d time.Duration) (b []byte, from netip.AddrPort, ok bool) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, netip.AddrPort{}, false
		}
		t.Fatalf("read: %v", err)
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
}

// exchange sends req to to and returns the answer and where it came from.
func exchange(t *testing.T, c *net.UDPConn, to netip.AddrPort, req []byte) (*stun.Message, netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(req, to); err != nil {
		t.Fatal(err)
	}
	b, from, ok := receive(t, c, wait)
	if !ok {
		t.Fatalf("no answer from %v", to)
	}
	return decodeAnswer(t, b, binary.BigEndian.Uint32(req[4:8]) != magicCookie), from
}

func TestChangeRequestAnsweredFromTheRightSocket(t *testing.T) {
	s := rfc5780Server(t)
	a := s.Addrs()
	if a.AltPort.Port() != a.Primary.Port()+1 || a.AltIP.Addr() != netip.MustParseAddr("127.0.0.2") ||
		a.AltBoth != netip.AddrPortFrom(a.AltIP.Addr(), a.AltPort.Port()) {
		t.Fatalf("addresses %+v", a)
	}
	c := udpClient(t, "udp4", "127.0.0.1:0")
	for _, tc := range []struct {
		name     string
		to       netip.AddrPort
		change   ChangeRequest
		wantFrom netip.AddrPort
		other    netip.AddrPort
	}{
		{"none", a.Primary, ChangeRequest{}, a.Primary, a.AltBoth},
		{"ip", a.Primary, ChangeRequest{IP: true}, a.AltIP, a.AltBoth},
		{"port", a.Primary, ChangeRequest{Port: true}, a.AltPort, a.AltBoth},
		{"both", a.Primary, ChangeRequest{IP: true, Port: true}, a.AltBoth, a.AltBoth},
		{"ip, sent to the alternate ip", a.AltIP, ChangeRequest{IP: true}, a.Primary, a.AltPort},
		{"port, sent to the alternate port", a.AltPort, ChangeRequest{Port: true}, a.Primary, a.AltIP},
		{"both, sent to the other address", a.AltBoth, ChangeRequest{IP: true, Port: true}, a.Primary, a.Primary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, from := exchange(t, c, tc.to, request(t, tc.change, stun.Fingerprint))
			if from != tc.wantFrom {
				t.Errorf("answer from %v, want %v", from, tc.wantFrom)
			}
			if got := addrAttr(t, m, stun.AttrResponseOrigin); got != from {
				t.Errorf("RESPONSE-ORIGIN %v, sent from %v", got, from)
			}
			if got := addrAttr(t, m, stun.AttrOtherAddress); got != tc.other {
				t.Errorf("OTHER-ADDRESS %v, want %v", got, tc.other)
			}
			var x stun.XORMappedAddress
			if err := x.GetFrom(m); err != nil || x.String() != localAddr(c).String() {
				t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want %v", x, err, localAddr(c))
			}
		})
	}
	st := s.Stats()
	if st.ChangedIP != 4 || st.ChangedPort != 4 || st.Answered != 7 || st.UDPRequests != 7 {
		t.Errorf("stats %+v", st)
	}
}

func TestResponsePortSendsToTheOtherSocket(t *testing.T) {
	s := rfc5780Server(t)
	asker := udpClient(t, "udp4", "127.0.0.1:0")
	target := udpClient(t, "udp4", "127.0.0.1:0")
	req := request(t, ResponsePort(localAddr(target).Port()))
	if _, err := asker.WriteToUDPAddrPort(req, s.Addrs().Primary); err != nil {
		t.Fatal(err)
	}
	b, from, ok := receive(t, target, wait)
	if !ok {
		t.Fatal("no answer at the RESPONSE-PORT")
	}
	m := decodeAnswer(t, b, false)
	if from != s.Addrs().Primary || m.TransactionID != decodeAnswer(t, req, false).TransactionID {
		t.Errorf("answer from %v, %v", from, m)
	}
	// The mapped address is the asker's: RESPONSE-PORT moves the answer,
	// not the question.
	if got := addrAttr(t, m, stun.AttrMappedAddress); got != localAddr(asker) {
		t.Errorf("MAPPED-ADDRESS %v, want %v", got, localAddr(asker))
	}
	if _, _, ok := receive(t, asker, quiet); ok {
		t.Error("the asker got an answer too")
	}
}

func TestPaddingOverUDP(t *testing.T) {
	s := rfc5780Server(t)
	c := udpClient(t, "udp4", "127.0.0.1:0")
	m, _ := exchange(t, c, s.Addrs().Primary, request(t, Padding(1500)))
	var p Padding
	if err := p.GetFrom(m); err != nil || p != 1500 || len(m.Raw) < 1500+headerSize {
		t.Errorf("PADDING %d (%v) in %d bytes", p, err, len(m.Raw))
	}
	m, _ = exchange(t, c, s.Addrs().Primary, request(t, Padding(1500), ResponsePort(localAddr(c).Port())))
	if code := errorCode(t, m); code != 400 {
		t.Errorf("PADDING with RESPONSE-PORT: %d", code)
	}
}

func TestRFC3489Request(t *testing.T) {
	s := rfc5780Server(t)
	c := udpClient(t, "udp4", "127.0.0.1:0")
	for _, tc := range []struct {
		name     string
		req      []byte
		wantFrom netip.AddrPort
	}{
		{"no change", stund0, s.Addrs().Primary},
		{"change ip", stund4, s.Addrs().AltIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.WriteToUDPAddrPort(tc.req, s.Addrs().Primary); err != nil {
				t.Fatal(err)
			}
			b, from, ok := receive(t, c, wait)
			if !ok {
				t.Fatal("no answer")
			}
			if from != tc.wantFrom {
				t.Errorf("answer from %v, want %v", from, tc.wantFrom)
			}
			// RFC 3489: the 16 bytes after the length are the
			// transaction ID, echoed as they came.
			if !slices.Equal(b[4:headerSize], tc.req[4:headerSize]) || binary.BigEndian.Uint16(b[0:2]) != 0x0101 {
				t.Fatalf("header %x for request %x", b[:headerSize], tc.req[:headerSize])
			}
			m := decodeAnswer(t, b, true)
			if got := addrAttr(t, m, stun.AttrMappedAddress); got != localAddr(c) {
				t.Errorf("MAPPED-ADDRESS %v", got)
			}
			if got := addrAttr(t, m, stun.AttrSourceAddress); got != from {
				t.Errorf("SOURCE-ADDRESS %v, sent from %v", got, from)
			}
			if got := addrAttr(t, m, stun.AttrChangedAddress); got != s.Addrs().AltBoth {
				t.Errorf("CHANGED-ADDRESS %v", got)
			}
		})
	}
}

func TestGarbageOverUDP(t *testing.T) {
	s := rfc5780Server(t)
	c := udpClient(t, "udp4", "127.0.0.1:0")
	garbage := [][]byte{
		{},
		{0},
		[]byte(strings.Repeat("\xff", 1000)),
		append([]byte{0x80, 0}, natdiscoveryPlain[2:]...),
		append(slices.Clone(natdiscoveryPlain), 1, 2, 3, 4),
		make([]byte, 65000),
	}
	for _, g := range garbage {
		if _, err := c.WriteToUDPAddrPort(g, s.Addrs().Primary); err != nil {
			t.Fatal(err)
		}
	}
	// Still serving, and nothing came back for the garbage: the first
	// datagram back is the answer to the request.
	req := request(t)
	m, _ := exchange(t, c, s.Addrs().Primary, req)
	if m.TransactionID != decodeAnswer(t, req, false).TransactionID {
		t.Fatalf("first datagram back is not the answer: %v", m)
	}
	if st := s.Stats(); st.Malformed != uint64(len(garbage)) || st.Answered != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestIPv6WithoutAlternate(t *testing.T) {
	s := newServer(t, Config{Listen: "[::1]:0"})
	if a := s.Addrs(); a.AltBoth.IsValid() || !a.Primary.Addr().Is6() {
		t.Fatalf("addresses %+v", a)
	}
	c := udpClient(t, "udp6", "[::1]:0")
	m, _ := exchange(t, c, s.Addrs().Primary, request(t))
	var x stun.XORMappedAddress
	if err := x.GetFrom(m); err != nil || x.String() != localAddr(c).String() {
		t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want %v", x, err, localAddr(c))
	}
	m, _ = exchange(t, c, s.Addrs().Primary, request(t, ChangeRequest{Port: true}))
	if code := errorCode(t, m); code != 420 {
		t.Errorf("CHANGE-REQUEST without an alternate: %d", code)
	}
}

// readTCPAnswer reads one framed STUN message.
func readTCPAnswer(t *testing.T, c net.Conn) *stun.Message {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	head := make([]byte, headerSize)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatalf("read header: %v", err)
	}
	b := make([]byte, headerSize+int(binary.BigEndian.Uint16(head[2:4])))
	copy(b, head)
	if _, err := io.ReadFull(c, b[headerSize:]); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return decodeAnswer(t, b, false)
}

// expectClosed waits for the server to close c.
func expectClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection still open: %v", err)
	}
}

func dialTCP(t *testing.T, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTCPFraming(t *testing.T) {
	s := rfc5780Server(t)
	for _, to := range []netip.AddrPort{s.Addrs().Primary, s.Addrs().AltBoth} {
		t.Run(to.String(), func(t *testing.T) {
			c := dialTCP(t, to)
			r1, r2, r3 := request(t), request(t, stun.Fingerprint), request(t, Padding(600))
			// Two messages in one write, the third in pieces.
			if _, err := c.Write(slices.Concat(r1, r2)); err != nil {
				t.Fatal(err)
			}
			for _, piece := range [][]byte{r3[:3], r3[3:25], r3[25:]} {
				if _, err := c.Write(piece); err != nil {
					t.Fatal(err)
				}
			}
			for _, req := range [][]byte{r1, r2, r3} {
				m := readTCPAnswer(t, c)
				if m.TransactionID != decodeAnswer(t, req, false).TransactionID || m.Type != stun.BindingSuccess {
					t.Fatalf("answer %v", m)
				}
				var x stun.XORMappedAddress
				if err := x.GetFrom(m); err != nil || x.String() != c.LocalAddr().String() {
					t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want %v", x, err, c.LocalAddr())
				}
				if got := addrAttr(t, m, stun.AttrResponseOrigin); got != to {
					t.Errorf("RESPONSE-ORIGIN %v, want %v", got, to)
				}
			}
			// CHANGE-REQUEST and RESPONSE-PORT cannot be done on a stream.
			for _, req := range [][]byte{request(t, ChangeRequest{IP: true}), request(t, ResponsePort(9))} {
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				if code := errorCode(t, readTCPAnswer(t, c)); code != 400 {
					t.Errorf("error %d, want 400", code)
				}
			}
		})
	}
	if st := s.Stats(); st.TCPRequests != 10 || st.Answered != 6 || st.Refused != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPClosesWhatItCannotFrame(t *testing.T) {
	s := newServer(t, Config{Listen: "127.0.0.1:0", tcpIdle: 200 * time.Millisecond})
	t.Run("too long", func(t *testing.T) {
		c := dialTCP(t, s.Addrs().Primary)
		head := slices.Clone(natdiscoveryPlain)
		binary.BigEndian.PutUint16(head[2:4], maxTCPMessage)
		if _, err := c.Write(head); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, wait)
	})
	t.Run("not stun", func(t *testing.T) {
		c := dialTCP(t, s.Addrs().Primary)
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: stun\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, wait)
	})
	t.Run("idle", func(t *testing.T) {
		c := dialTCP(t, s.Addrs().Primary)
		if _, err := c.Write(request(t)); err != nil {
			t.Fatal(err)
		}
		readTCPAnswer(t, c)
		expectClosed(t, c, wait)
	})
	t.Run("half a message, then silence", func(t *testing.T) {
		c := dialTCP(t, s.Addrs().Primary)
		if _, err := c.Write(request(t)[:10]); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, wait)
	})
	if st := s.Stats(); st.Malformed != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestTCPConnectionLimit(t *testing.T) {
	s := newServer(t, Config{Listen: "127.0.0.1:0"})
	// Each served connection answers once, so the server holds it; the
	// sources (127.0.0.1, .2, ...) each hold their most.
	serve := func(from string) {
		c := dialTCPFrom(t, from, s.Addrs().Primary)
		if _, err := c.Write(request(t)); err != nil {
			t.Fatal(err)
		}
		readTCPAnswer(t, c)
	}
	for i := range maxTCPConns {
		serve(fmt.Sprintf("127.0.0.%d", 1+i/maxTCPConnsPerSource))
	}
	for _, from := range []string{"127.0.0.1", "127.0.1.1"} { // one source over, then all
		over := dialTCPFrom(t, from, s.Addrs().Primary)
		_, _ = over.Write(request(t))
		expectClosed(t, over, wait)
	}
	if st := s.Stats(); st.TCPRefused != 2 {
		t.Errorf("stats %+v", st)
	}
}

// dialTCPFrom is dialTCP from a local address of the test's choosing.
func dialTCPFrom(t *testing.T, from string, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"hostname", Config{Listen: "localhost:3478"}, errListen},
		{"no port", Config{Listen: "127.0.0.1"}, errListen},
		{"bad port", Config{Listen: "127.0.0.1:70000"}, errListen},
		{"wildcard with alternate", Config{Listen: ":3478", AlternateIP: "127.0.0.2"}, errNeedConcrete},
		{"0.0.0.0 with alternate", Config{Listen: "0.0.0.0:3478", AlternateIP: "127.0.0.2"}, errNeedConcrete},
		{"alternate not an ip", Config{Listen: "127.0.0.1:3478", AlternateIP: "stun2"}, errAlternateIP},
		{"alternate of another family", Config{Listen: "127.0.0.1:3478", AlternateIP: "::1"}, errAlternateIP},
		{"alternate the same", Config{Listen: "127.0.0.1:3478", AlternateIP: "127.0.0.1"}, errAlternateIP},
		{"alternate unspecified", Config{Listen: "127.0.0.1:3478", AlternateIP: "0.0.0.0"}, errAlternateIP},
		{"alternate port alone", Config{Listen: "127.0.0.1:3478", AlternatePort: 3479}, errAlternatePort},
		{"alternate port the same", Config{Listen: "127.0.0.1:3478", AlternateIP: "127.0.0.2", AlternatePort: 3478}, errAlternatePort},
		{"alternate port out of range", Config{Listen: "127.0.0.1:3478", AlternateIP: "127.0.0.2", AlternatePort: 65536}, errAlternatePort},
		{"no port + 1", Config{Listen: "127.0.0.1:65535", AlternateIP: "127.0.0.2"}, errAlternatePort},
		{"software", Config{Listen: "127.0.0.1:0", Software: strings.Repeat("x", 764)}, errSoftware},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg, zaptest.NewLogger(t))
			if err == nil {
				_ = s.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestNewAlternatePortTaken(t *testing.T) {
	// Hold a port pair's second half, then ask for the pair.
	held := udpClient(t, "udp4", "127.0.0.2:0")
	port := localAddr(held).Port()
	_, err := New(Config{Listen: "127.0.0.1:" + strconv.Itoa(int(port)-1), AlternateIP: "127.0.0.2"}, zaptest.NewLogger(t))
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("got %v, want EADDRINUSE", err)
	}
}
