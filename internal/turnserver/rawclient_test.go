package turnserver

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// rawClient speaks STUN/TURN message by message, for what pion's client
// hides: the ChannelBind answer (it binds channels in the background of
// WriteTo), LIFETIME and SOFTWARE of responses.
type rawClient struct {
	t          *testing.T
	conn       net.PacketConn
	server     net.Addr
	user, pass string

	nonce     stun.Nonce
	realm     stun.Realm
	key       stun.MessageIntegrity
	challenge *stun.Message // the first 401
}

func (r *rig) raw(tr Transport, user, pass string) *rawClient {
	conn, server := r.dial(tr)
	return &rawClient{t: r.t, conn: conn, server: server, user: user, pass: pass}
}

func (c *rawClient) roundTrip(req *stun.Message) *stun.Message {
	c.t.Helper()
	if _, err := c.conn.WriteTo(req.Raw, c.server); err != nil {
		c.t.Fatal(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1600)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			c.t.Fatalf("waiting for the answer to %v: %v", req.Type, err)
		}
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.TransactionID == req.TransactionID {
			return res
		}
	}
}

// request sends an authenticated request (answering the challenge first
// if need be) and returns the answer.
func (c *rawClient) request(method stun.Method, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	for range 2 {
		setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
		if c.nonce != nil {
			setters = append(setters, stun.NewUsername(c.user), c.realm, c.nonce, c.key)
		}
		res := c.roundTrip(stun.MustBuild(append(setters, stun.Fingerprint)...))
		var code stun.ErrorCodeAttribute
		if res.Type.Class == stun.ClassErrorResponse && code.GetFrom(res) == nil && c.nonce == nil &&
			code.Code == stun.CodeUnauthorized && !res.Contains(stun.AttrMessageIntegrity) {
			if err := c.nonce.GetFrom(res); err != nil {
				c.t.Fatal(err)
			}
			if err := c.realm.GetFrom(res); err != nil {
				c.t.Fatal(err)
			}
			c.key = stun.NewLongTermIntegrity(c.user, c.realm.String(), c.pass)
			c.challenge = res
			continue
		}
		return res
	}
	c.t.Fatalf("%v: challenged twice", method)
	return nil
}

func errorCode(m *stun.Message) stun.ErrorCode {
	var code stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || code.GetFrom(m) != nil {
		return 0
	}
	return code.Code
}

type peerAddr struct {
	ip   string
	port int
}

func (p peerAddr) AddTo(m *stun.Message) error {
	a := stun.XORMappedAddress{IP: net.ParseIP(p.ip), Port: p.port}
	return a.AddToAs(m, stun.AttrXORPeerAddress)
}

func channel(n uint16) stun.Setter {
	v := make([]byte, 4)
	binary.BigEndian.PutUint16(v, n)
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: v}
}

var udpTransport = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

// A ChannelBind to a refused peer gets 403 (pion alone would say 401),
// signed with the user's key; one that does not authenticate is left to
// pion's 401; an allowed peer binds. Also: the challenge carries
// SOFTWARE, and LIFETIME is min(MaxLifetime, 10 min).
func TestChannelBindForbidden(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxLifetime = 2 * time.Minute }, nil)
	for i, tr := range []Transport{TransportUDP, TransportTCP, TransportTLS} {
		t.Run(tr.String(), func(t *testing.T) {
			c := r.raw(tr, "alice", "alice-pass")
			res := c.request(stun.MethodAllocate, udpTransport)
			if res.Type != stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse) {
				t.Fatalf("allocate: %v %d", res.Type, errorCode(res))
			}
			var sw stun.Software
			if err := sw.GetFrom(c.challenge); err != nil || sw.String() != "imsgate-test" {
				t.Errorf("challenge SOFTWARE %q, %v", sw, err)
			}
			lt, err := res.Get(stun.AttrLifetime)
			if err != nil || binary.BigEndian.Uint32(lt) != 120 {
				t.Errorf("LIFETIME %v (%v), want 120 s", lt, err)
			}

			res = c.request(stun.MethodChannelBind, channel(0x4000), peerAddr{"10.1.2.3", 5000})
			if errorCode(res) != stun.CodeForbidden {
				t.Fatalf("ChannelBind 10.1.2.3: %v %d, want 403", res.Type, errorCode(res))
			}
			if err := c.key.Check(res); err != nil {
				t.Errorf("403 MESSAGE-INTEGRITY: %v", err)
			}
			if err := stun.Fingerprint.Check(res); err != nil {
				t.Errorf("403 FINGERPRINT: %v", err)
			}

			forged := *c
			forged.key = stun.NewLongTermIntegrity("alice", testRealm, "not-alice-pass")
			res = forged.request(stun.MethodChannelBind, channel(0x4000), peerAddr{"10.1.2.3", 5000})
			if errorCode(res) != stun.CodeUnauthorized {
				t.Errorf("forged ChannelBind: %v %d, want 401", res.Type, errorCode(res))
			}

			res = c.request(stun.MethodChannelBind, channel(0x4001), peerAddr{"127.0.0.1", 5000})
			if res.Type != stun.NewType(stun.MethodChannelBind, stun.ClassSuccessResponse) {
				t.Fatalf("ChannelBind 127.0.0.1: %v %d", res.Type, errorCode(res))
			}
			if got := r.srv.Stats().RefusedPeer; got != uint64(i+1) {
				t.Errorf("refused peers %d, want %d", got, i+1)
			}
		})
	}
}

// What the screen passes on is byte for byte what came in, and what
// decorate leaves alone is too: the packet path is untouched.
func TestScreenPassesOthers(t *testing.T) {
	r := newRig(t, nil, nil)
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	for _, m := range [][]byte{
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), channel(0x4000), peerAddr{"10.1.2.3", 1}).Raw, // unauthenticated
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), channel(0x4000), peerAddr{"127.0.0.1", 1}).Raw,
		{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4},
	} {
		if reply := r.srv.screen(m, client, net.UDPAddrFromAddrPort(r.srv.Addrs().UDP)); reply != nil {
			t.Errorf("screen answered %x", m)
		}
		if d := r.srv.decorate(m); !bytes.Equal(d, m) {
			t.Errorf("decorate changed %x", m)
		}
	}
}

func FuzzScreen(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		channel(0x4000), peerAddr{"10.1.2.3", 1}, stun.NewUsername("alice"), stun.NewRealm(testRealm),
		stun.NewNonce("n"), stun.NewLongTermIntegrity("alice", testRealm, "alice-pass"), stun.Fingerprint).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		stun.CodeUnauthorized, stun.NewNonce("n"), stun.NewRealm(testRealm), stun.Fingerprint).Raw)
	f.Add([]byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4})
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		udpTransport, lifetime(3000), stun.NewUsername("alice"), stun.NewRealm(testRealm),
		stun.NewNonce("n"), stun.NewLongTermIntegrity("alice", testRealm, "alice-pass"), stun.Fingerprint).Raw)
	s := &Server{
		cfg:      Config{Realm: testRealm, MaxLifetime: 2 * time.Minute},
		auth:     newAuthenticator(Config{Realm: testRealm, Users: map[string]string{"alice": "alice-pass"}}, time.Now),
		policy:   newPeerPolicy(Config{}, nil, 0),
		permits:  newPermits(4),
		warns:    newWarnLimiter(time.Minute, 16),
		software: stun.NewSoftware("fuzz"),
		lim:      defaultLimits(),
		log:      zapNop,
	}
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := append([]byte(nil), msg...)
		if reply := s.screen(msg, client, client); reply != nil {
			m := &stun.Message{Raw: reply}
			if err := m.Decode(); err != nil {
				t.Fatalf("screen answered %x", reply)
			}
			switch errorCode(m) {
			case stun.CodeForbidden, stun.CodeAllocMismatch, stun.CodeUnsupportedTransProto, stun.CodeBadRequest, stun.CodeInsufficientCapacity:
			default:
				t.Fatalf("screen answered %v %d", m.Type, errorCode(m))
			}
		}
		if !bytes.Equal(msg, in) {
			// Only a LIFETIME lowered, and signed again.
			m := &stun.Message{Raw: append([]byte(nil), msg...)}
			decodeErr := m.Decode()
			lt, err := m.Get(stun.AttrLifetime)
			if decodeErr != nil || err != nil || binary.BigEndian.Uint32(lt) > uint32(s.cfg.MaxLifetime/time.Second) {
				t.Fatalf("screen changed %x to %x", in, msg)
			}
			in = append(in[:0], msg...)
		}
		out := s.decorate(msg)
		if !bytes.Equal(msg, in) {
			t.Fatal("input changed")
		}
		if !bytes.Equal(out, msg) {
			m := &stun.Message{Raw: out}
			if err := m.Decode(); err != nil {
				t.Fatalf("decorate made an undecodable message: %v", err)
			}
		}
	})
}

// What screen answers in pion's place, over UDP and TCP: a request on a
// 5-tuple without an allocation gets 437 (pion sends nothing), an
// Allocate of a TCP relay (RFC 6062, not offered) 442 (pion: 508), and
// a LIFETIME above MaxLifetime is granted MaxLifetime (pion grants up to
// an hour), on Allocate and Refresh. Each answer is signed.
func TestScreenAnswers(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxLifetime = 2 * time.Minute }, func(l *limits) { l.maxChannels = 2 })
	for _, tr := range []Transport{TransportUDP, TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			c := r.raw(tr, "alice", "alice-pass")
			for _, req := range []struct {
				method stun.Method
				attrs  []stun.Setter
			}{
				{stun.MethodRefresh, []stun.Setter{lifetime(60)}},
				{stun.MethodCreatePermission, []stun.Setter{peerAddr{"127.0.0.1", 5000}}},
				{stun.MethodChannelBind, []stun.Setter{channel(0x4001), peerAddr{"127.0.0.1", 5000}}},
				{stun.MethodChannelBind, []stun.Setter{channel(0x4001), peerAddr{"10.1.2.3", 5000}}},
			} {
				res := c.request(req.method, req.attrs...)
				if errorCode(res) != stun.CodeAllocMismatch || c.key.Check(res) != nil {
					t.Errorf("%v without an allocation: %v %d, want 437 signed", req.method, res.Type, errorCode(res))
				}
			}
			res := c.request(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{6, 0, 0, 0}})
			if errorCode(res) != stun.CodeUnsupportedTransProto || c.key.Check(res) != nil {
				t.Errorf("TCP allocate: %v %d, want 442 signed", res.Type, errorCode(res))
			}
			res = c.request(stun.MethodAllocate, udpTransport, lifetime(3000))
			if got := lifetimeOf(res); got != 120 {
				t.Errorf("Allocate asking 3000 s: %v %d, LIFETIME %d, want 120", res.Type, errorCode(res), got)
			}
			if got := lifetimeOf(c.request(stun.MethodRefresh, lifetime(3000))); got != 120 {
				t.Errorf("Refresh asking 3000 s: LIFETIME %d, want 120", got)
			}
			if got := lifetimeOf(c.request(stun.MethodRefresh, lifetime(30))); got != 30 {
				t.Errorf("Refresh asking 30 s: LIFETIME %d, want 30", got)
			}
			// A channel number out of range; then more channels than an
			// allocation may hold (2 here).
			if res := c.request(stun.MethodChannelBind, channel(0x8000), peerAddr{"127.0.0.1", 5000}); errorCode(res) != stun.CodeBadRequest {
				t.Errorf("ChannelBind 0x8000: %v %d, want 400", res.Type, errorCode(res))
			}
			for i := range uint16(3) {
				res := c.request(stun.MethodChannelBind, channel(0x4000+i), peerAddr{"127.0.0.1", 5000 + int(i)})
				want := stun.ErrorCode(0)
				if i == 2 {
					want = stun.CodeInsufficientCapacity
				}
				if errorCode(res) != want {
					t.Errorf("ChannelBind %d: %v %d, want %d", i, res.Type, errorCode(res), want)
				}
			}
			// Refreshing one it holds is no new channel.
			if res := c.request(stun.MethodChannelBind, channel(0x4000), peerAddr{"127.0.0.1", 5000}); res.Type.Class != stun.ClassSuccessResponse {
				t.Errorf("ChannelBind refresh: %v %d", res.Type, errorCode(res))
			}
		})
	}
	if st := r.srv.Stats(); st.Created.TCP != 1 || st.Created.UDP != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestLifetimeNotRewritable: a LIFETIME above the maximum in a request
// that cannot be rewritten in place (bytes after the message) is refused
// 400, not handed to pion to grant.
func TestLifetimeNotRewritable(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxLifetime = 2 * time.Minute }, nil)
	c := r.raw(TransportUDP, "alice", "alice-pass")
	c.request(stun.MethodRefresh) // the challenge: nonce and realm
	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), udpTransport, lifetime(3000),
		stun.NewUsername(c.user), c.realm, c.nonce, c.key, stun.Fingerprint)
	padded := &stun.Message{Raw: append(append([]byte(nil), req.Raw...), 0, 0, 0, 0), TransactionID: req.TransactionID}
	res := c.roundTrip(padded)
	if errorCode(res) != stun.CodeBadRequest {
		t.Fatalf("Allocate with trailing bytes asking 3000 s: %v %d (LIFETIME %d), want 400", res.Type, errorCode(res), lifetimeOf(res))
	}
}

func lifetime(seconds uint32) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, seconds)}
}

func lifetimeOf(m *stun.Message) uint32 {
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// A relay does not reach the server itself: with ExternalIP a public
// address, a ChannelBind to it on a relay port or the listener's port is
// refused 403, and a Send indication to a relay port is dropped; another
// port of the address (where the gateway's media may be) binds. Nothing
// leaves loopback: a binding sends nothing and the Send is dropped.
func TestSelfLoop(t *testing.T) {
	const own = "192.88.99.7" // deprecated 6to4 anycast (RFC 7526): public, and nobody's
	r := newRig(t, func(c *Config) { c.ExternalIP = own }, nil)
	c := r.raw(TransportUDP, "alice", "alice-pass")
	if res := c.request(stun.MethodAllocate, udpTransport); res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("allocate: %d", errorCode(res))
	}
	listen := int(r.srv.Addrs().UDP.Port())
	for i, port := range []int{testPortMin + 7, listen} {
		res := c.request(stun.MethodChannelBind, channel(0x4000+uint16(i)), peerAddr{own, port})
		if errorCode(res) != stun.CodeForbidden {
			t.Errorf("ChannelBind %s:%d: %v %d, want 403", own, port, res.Type, errorCode(res))
		}
	}
	if res := c.request(stun.MethodChannelBind, channel(0x4010), peerAddr{own, 1}); res.Type.Class != stun.ClassSuccessResponse {
		t.Errorf("ChannelBind %s:1: %d", own, errorCode(res))
	}
	send := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAddr{own, testPortMin + 7}, stun.RawAttribute{Type: stun.AttrData, Value: []byte("looping datagram")}, stun.Fingerprint)
	if _, err := c.conn.WriteTo(send.Raw, c.server); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Send to a relay port dropped", func() bool { return r.srv.Stats().DroppedToSelf == 1 })
	if st := r.srv.Stats(); st.RefusedPeer != 2 || st.ToPeers.Packets != 0 {
		t.Errorf("stats %+v", st)
	}
}
