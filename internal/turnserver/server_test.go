package turnserver

import (
	"crypto/rand"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

var transports = []Transport{TransportUDP, TransportTCP, TransportTLS}

// Allocate with long-term and REST credentials over every transport,
// relay a datagram to a peer and one back; the relay is on RelayIP inside
// the port range, and the stats count it under its transport.
func TestRelay(t *testing.T) {
	r := newRig(t, nil, nil)
	restUser, restPass := RESTCredentials(testSecret, "carol@example.com", time.Hour, time.Now())
	creds := []struct{ name, user, pass string }{
		{"long-term", "alice", "alice-pass"},
		{"rest", restUser, restPass},
	}
	want := PerTransport{}
	for _, tr := range transports {
		for _, cr := range creds {
			t.Run(tr.String()+"/"+cr.name, func(t *testing.T) {
				c := r.client(tr, cr.user, cr.pass)
				relay := r.allocate(c)
				a := relay.LocalAddr().(*net.UDPAddr)
				if !a.IP.Equal(net.IPv4(127, 0, 0, 1)) || a.Port < testPortMin || a.Port > testPortMax {
					t.Errorf("relay %v, want 127.0.0.1:%d-%d", a, testPortMin, testPortMax)
				}
				echo(t, relay, r.peer())
			})
			switch tr {
			case TransportUDP:
				want.UDP++
			case TransportTCP:
				want.TCP++
			case TransportTLS:
				want.TLS++
			}
		}
	}
	st := r.srv.Stats()
	if st.Created != want {
		t.Errorf("created %+v, want %+v", st.Created, want)
	}
	// A relay counts a datagram when its write returns, which may be after
	// the peer had it and answered.
	eventually(t, "6 datagrams counted each way", func() bool {
		st = r.srv.Stats()
		return st.ToPeers.Packets == 6 && st.FromPeers.Packets == 6 && st.ToPeers.Bytes == 6*16
	})
	if st.RefusedAuth != 0 || st.RefusedPeer != 0 {
		t.Errorf("refusals in a clean run: %+v", st)
	}
}

// Credentials the server must refuse get 401 (after the challenge), and
// each counts once as a refusal.
func TestAuthRefused(t *testing.T) {
	r := newRig(t, nil, nil)
	now := time.Now()
	expiredUser, expiredPass := RESTCredentials(testSecret, "carol", -time.Minute, now)
	forgedUser, forgedPass := RESTCredentials("not-the-secret", "carol", time.Hour, now)
	cases := []struct{ name, user, pass string }{
		{"rest expired", expiredUser, expiredPass},
		{"rest wrong secret", forgedUser, forgedPass},
		{"wrong password", "alice", "bob-pass"},
		{"unknown user", "mallory", "x"},
		{"rest not a number", "soon:carol", "x"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client(TransportUDP, tc.user, tc.pass).Allocate()
			if code := turnCode(err); code != int(stun.CodeUnauthorized) {
				t.Fatalf("allocate: %v, want 401", err)
			}
			if got := r.srv.Stats().RefusedAuth; got != uint64(i+1) {
				t.Errorf("refused auth %d, want %d", got, i+1)
			}
		})
	}
	if st := r.srv.Stats(); st.Created.UDP != 0 || st.Active.UDP != 0 {
		t.Errorf("allocations made: %+v", st)
	}
}

// A CreatePermission to a peer the policy refuses gets 403 on every
// transport, while loopback, in AllowedPeers, relays.
func TestCreatePermissionForbidden(t *testing.T) {
	r := newRig(t, nil, nil)
	for i, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			c := r.client(tr, "alice", "alice-pass")
			relay := r.allocate(c)
			err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5000})
			if code := turnCode(err); code != int(stun.CodeForbidden) {
				t.Fatalf("CreatePermission 10.1.2.3: %v, want 403", err)
			}
			if got := r.srv.Stats().RefusedPeer; got != uint64(i+1) {
				t.Errorf("refused peers %d, want %d", got, i+1)
			}
			echo(t, relay, r.peer())
		})
	}
}

// Without AllowedPeers the policy refuses loopback, private, link-local
// and the like with 403, in both address families, and lets a public
// address through (a permission sends nothing to the peer).
func TestDefaultPolicy(t *testing.T) {
	families := []struct {
		name, listen, relay string
		refused             []string
		public              string
	}{
		{"ipv4", "127.0.0.1:0", "127.0.0.1",
			[]string{"127.0.0.1", "127.5.5.5", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.1.1", "100.64.0.1", "0.1.2.3", "224.0.0.1", "255.255.255.255"},
			"8.8.8.8"},
		{"ipv6", "[::1]:0", "::1",
			[]string{"::1", "fe80::1", "fc00::1", "fd12:3456::1", "::", "ff02::1", "64:ff9b::a01:203"},
			"2001:4860:4860::8888"},
	}
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			r := newRig(t, func(c *Config) {
				c.Listen, c.RelayIP, c.AllowedPeers, c.TLSListen = f.listen, f.relay, nil, ""
			}, nil)
			c := r.client(TransportUDP, "alice", "alice-pass")
			r.allocate(c)
			for _, p := range f.refused {
				err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(p), Port: 5000})
				if code := turnCode(err); code != int(stun.CodeForbidden) {
					t.Errorf("CreatePermission %s: %v, want 403", p, err)
				}
			}
			if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(f.public), Port: 5000}); err != nil {
				t.Errorf("CreatePermission %s: %v", f.public, err)
			}
			if got := r.srv.Stats().RefusedPeer; got != uint64(len(f.refused)) {
				t.Errorf("refused peers %d, want %d", got, len(f.refused))
			}
		})
	}
}

// QuotaPerUser and QuotaTotal refuse with 486; a closed allocation gives
// its place back.
func TestQuota(t *testing.T) {
	r := newRig(t, func(c *Config) { c.QuotaPerUser, c.QuotaTotal = 2, 3 }, nil)
	a1 := r.allocate(r.client(TransportUDP, "alice", "alice-pass"))
	r.allocate(r.client(TransportTCP, "alice", "alice-pass"))
	_, err := r.client(TransportUDP, "alice", "alice-pass").Allocate()
	if code := turnCode(err); code != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("alice's third: %v, want 486", err)
	}
	// REST credentials of one subject share its quota whatever the expiry.
	restUser, restPass := RESTCredentials(testSecret, "bob", time.Hour, time.Now())
	r.allocate(r.client(TransportTLS, restUser, restPass))
	_, err = r.client(TransportUDP, "bob", "bob-pass").Allocate()
	if code := turnCode(err); code != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("fourth in all: %v, want 486", err)
	}
	if st := r.srv.Stats(); st.RefusedQuota != 2 || st.Active != (PerTransport{UDP: 1, TCP: 1, TLS: 1}) {
		t.Errorf("stats %+v", st)
	}
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's first allocation deleted", func() bool { return r.srv.Stats().Active.UDP == 0 })
	r.allocate(r.client(TransportUDP, "alice", "alice-pass"))
}

// Relays take ports inside the range only; when it is full the Allocate
// fails (508) rather than take a port outside.
func TestRelayPortRange(t *testing.T) {
	const lo, hi = testPortMin + 50, testPortMin + 53
	r := newRig(t, func(c *Config) { c.RelayPortMin, c.RelayPortMax = lo, hi }, nil)
	seen := map[int]bool{}
	for range hi - lo + 1 {
		relay := r.allocate(r.client(TransportUDP, "alice", "alice-pass"))
		p := relay.LocalAddr().(*net.UDPAddr).Port
		if p < lo || p > hi || seen[p] {
			t.Fatalf("relay port %d: outside %d-%d or taken twice", p, lo, hi)
		}
		seen[p] = true
	}
	_, err := r.client(TransportUDP, "alice", "alice-pass").Allocate()
	if code := turnCode(err); code != int(stun.CodeInsufficientCapacity) {
		t.Fatalf("allocate with the range full: %v, want 508", err)
	}
}

// ExternalIP is the relayed address told to the client, while the relay
// binds RelayIP.
func TestExternalIP(t *testing.T) {
	r := newRig(t, func(c *Config) { c.ExternalIP = "192.0.2.77" }, nil)
	relay := r.allocate(r.client(TransportUDP, "alice", "alice-pass"))
	a := relay.LocalAddr().(*net.UDPAddr)
	if !a.IP.Equal(net.ParseIP("192.0.2.77")) || a.Port < testPortMin || a.Port > testPortMax {
		t.Fatalf("relayed address %v, want 192.0.2.77:%d-%d", a, testPortMin, testPortMax)
	}
	echo(t, relay, r.peer())
}

// An allocation may hold permissions for maxPermits peer addresses; one
// more is refused 403, a refresh of one it has is not.
func TestPermitsBound(t *testing.T) {
	r := newRig(t, nil, func(l *limits) { l.maxPermits = 2 })
	c := r.client(TransportUDP, "alice", "alice-pass")
	r.allocate(c)
	peer := func(last byte) net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, last), Port: 9} }
	for _, last := range []byte{1, 2, 1} {
		if err := c.CreatePermission(peer(last)); err != nil {
			t.Fatalf("CreatePermission 127.0.0.%d: %v", last, err)
		}
	}
	if code := turnCode(c.CreatePermission(peer(3))); code != int(stun.CodeForbidden) {
		t.Fatalf("third peer: want 403, got %d", code)
	}
	if st := r.srv.Stats(); st.RefusedPermits != 1 || st.RefusedPeer != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A TCP or TLS connection without an allocation is closed after
// allocateTimeout; one with an allocation is not.
func TestStreamAllocateTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := newRig(t, nil, func(l *limits) { l.allocateTimeout = timeout })
	a := r.srv.Addrs()

	// Allocated first, so it has had as long as the idle ones at the end.
	relay := r.allocate(r.client(TransportTCP, "alice", "alice-pass"))

	for _, addr := range []string{a.TCP.String(), a.TLS.String()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%s: read returned data", addr)
		}
		if d := time.Since(start); d < timeout-50*time.Millisecond || d > 3*time.Second {
			t.Errorf("%s: closed after %v, want about %v", addr, d, timeout)
		}
	}
	if got := r.srv.Stats().TimedOutConns; got != 2 {
		t.Errorf("timed out %d, want 2", got)
	}
	echo(t, relay, r.peer())
}

// Past maxPending connections without an allocation, new ones are closed
// at accept.
func TestStreamPendingBound(t *testing.T) {
	r := newRig(t, nil, func(l *limits) { l.maxPending = 2 })
	a := r.srv.Addrs()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", a.TCP.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}
	_ = conns[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection read data")
	}
	if got := r.srv.Stats().RefusedConns; got != 1 {
		t.Errorf("refused conns %d, want 1", got)
	}
	// The first two still speak TURN.
	_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := conns[0].Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Read(make([]byte, 1500)); err != nil {
		t.Fatalf("binding over the first connection: %v", err)
	}
}

// Random bytes, truncated STUN and oversized frames on every transport do
// not stop the server or its other clients.
func TestGarbage(t *testing.T) {
	r := newRig(t, nil, nil)
	relay := r.allocate(r.client(TransportUDP, "alice", "alice-pass"))
	a := r.srv.Addrs()

	junk := [][]byte{
		{},
		{0x00, 0x01},
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:19],
		{0x40, 0x00, 0xff, 0xff, 1, 2, 3},                                                   // ChannelData claiming 64 KiB
		append([]byte{0x00, 0x09, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 20)...), // ChannelBind with a lying length
	}
	for i := range 50 {
		b := make([]byte, 1+i*37%600)
		_, _ = rand.Read(b)
		junk = append(junk, b)
	}
	u, err := net.Dial("udp", a.UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, j := range junk {
		_, _ = u.Write(j)
	}
	for _, addr := range []string{a.TCP.String(), a.TLS.String()} {
		for _, j := range junk[1:] {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write(j)
			_ = c.Close()
		}
	}
	echo(t, relay, r.peer())
	r.allocate(r.client(TransportTCP, "bob", "bob-pass"))
}

// Close with allocations on every transport and connections in every
// state returns with all of them gone (the rig's leak check runs after).
func TestCloseWithAllocations(t *testing.T) {
	r := newRig(t, nil, nil)
	for _, tr := range transports {
		r.allocate(r.client(tr, "alice", "alice-pass"))
	}
	idle, err := net.Dial("tcp", r.srv.Addrs().TLS.String()) // no handshake
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.srv.Stats(); st.Active != (PerTransport{}) {
		t.Errorf("active after close: %+v", st.Active)
	}
	if n := r.srv.permits.clients(); n != 0 {
		t.Errorf("%d permission sets after close", n)
	}
}

func TestConfigInvalid(t *testing.T) {
	ok := Config{Listen: "127.0.0.1:0", Realm: "r", Users: map[string]string{"u": "p"}, RelayIP: "127.0.0.1"}
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"no listener", func(c *Config) { c.Listen = "" }},
		{"tls without config", func(c *Config) { c.TLSListen = "127.0.0.1:0" }},
		{"no realm", func(c *Config) { c.Realm = "" }},
		{"no credentials", func(c *Config) { c.Users = nil }},
		{"user with colon", func(c *Config) { c.Users = map[string]string{"1:u": "p"} }},
		{"relay ip", func(c *Config) { c.RelayIP = "localhost" }},
		{"unspecified relay, no external", func(c *Config) { c.RelayIP = "0.0.0.0" }},
		{"external family", func(c *Config) { c.ExternalIP = "::1" }},
		{"port range", func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50000, 40000 }},
		{"negative quota", func(c *Config) { c.QuotaTotal = -1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			if err := cfg.withDefaults().validate(); err == nil {
				t.Fatal("validated")
			}
		})
	}
	if err := ok.withDefaults().validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func ExampleRESTCredentials() {
	user, pass := RESTCredentials("north", "alice@example.com", time.Hour, time.Unix(1700000000, 0))
	fmt.Println(user, pass)
	// Output: 1700003600:alice@example.com VRPQNhy7K5wsWYjKwNdXCKp+sPA=
}
