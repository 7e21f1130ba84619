package stunserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"

	"github.com/pion/stun/v4"
)

const testSoftware = "imsgate test"

var (
	testAddrs = [numRoles]netip.AddrPort{
		rolePrimary: netip.MustParseAddrPort("127.0.0.1:3478"),
		roleAltPort: netip.MustParseAddrPort("127.0.0.1:3479"),
		roleAltIP:   netip.MustParseAddrPort("127.0.0.2:3478"),
		roleAltBoth: netip.MustParseAddrPort("127.0.0.2:3479"),
	}
	testClient = netip.MustParseAddrPort("192.0.2.7:40000")
)

// Requests as real clients sent them (captured on loopback).
var (
	// Debian's stun 0.97 (RFC 3489, no magic cookie): CHANGE-REQUEST 0, then 4 (IP).
	stund0, _ = hex.DecodeString("00010008011b0c5c33027b1c54ad467c76a79d490003000400000000")
	stund4, _ = hex.DecodeString("0001000802dc9f2b3ada1a3ae9020943cd24e37e0003000400000004")
	// turnutils_natdiscovery -m: a bare Binding request.
	natdiscoveryPlain, _ = hex.DecodeString("000100002112a442611022eebda4bab2e8d4dc12")
)

func rfc5780Handler() *handler { return newHandler(testAddrs, true, testSoftware) }

func plainHandler() *handler {
	return newHandler([numRoles]netip.AddrPort{rolePrimary: testAddrs[rolePrimary]}, false, testSoftware)
}

// request builds a Binding request (or what setters make of it).
func request(t testing.TB, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// decodeAnswer decodes a response; for RFC 3489 ones it puts the magic
// cookie in a copy first, as pion decodes nothing else.
func decodeAnswer(t testing.TB, raw []byte, legacy bool) *stun.Message {
	t.Helper()
	b := slices.Clone(raw)
	if legacy {
		binary.BigEndian.PutUint32(b[4:8], magicCookie)
	}
	m := new(stun.Message)
	if err := stun.Decode(b, m); err != nil {
		t.Fatalf("answer does not decode: %v", err)
	}
	return m
}

func addrAttr(t testing.TB, m *stun.Message, at stun.AttrType) netip.AddrPort {
	t.Helper()
	var a stun.MappedAddress
	if err := a.GetFromAs(m, at); err != nil {
		t.Fatalf("%s: %v", at, err)
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

func errorCode(t testing.TB, m *stun.Message) int {
	t.Helper()
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		t.Fatalf("ERROR-CODE: %v", err)
	}
	return int(ec.Code)
}

func TestHandle(t *testing.T) {
	type check func(t *testing.T, m *stun.Message)
	for _, tc := range []struct {
		name   string
		h      *handler
		tr     transport
		local  role
		req    []byte
		action action
		code   int
		from   role
		toPort uint16 // 0: the client's port
		check  check
	}{
		{
			name: "binding", req: natdiscoveryPlain, action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				var x stun.XORMappedAddress
				if err := x.GetFrom(m); err != nil || x.String() != testClient.String() {
					t.Errorf("XOR-MAPPED-ADDRESS %v, %v", x, err)
				}
				if got := addrAttr(t, m, stun.AttrMappedAddress); got != testClient {
					t.Errorf("MAPPED-ADDRESS %v", got)
				}
				if got := addrAttr(t, m, stun.AttrResponseOrigin); got != testAddrs[rolePrimary] {
					t.Errorf("RESPONSE-ORIGIN %v", got)
				}
				if got := addrAttr(t, m, stun.AttrOtherAddress); got != testAddrs[roleAltBoth] {
					t.Errorf("OTHER-ADDRESS %v", got)
				}
				var sw stun.Software
				if err := sw.GetFrom(m); err != nil || sw.String() != testSoftware {
					t.Errorf("SOFTWARE %q, %v", sw, err)
				}
				if err := stun.Fingerprint.Check(m); err != nil {
					t.Errorf("FINGERPRINT: %v", err)
				}
			},
		},
		{
			name: "change ip", req: request(t, ChangeRequest{IP: true}), action: actionAnswer, from: roleAltIP,
			check: func(t *testing.T, m *stun.Message) {
				if got := addrAttr(t, m, stun.AttrResponseOrigin); got != testAddrs[roleAltIP] {
					t.Errorf("RESPONSE-ORIGIN %v", got)
				}
				// OTHER-ADDRESS is relative to where the request came in.
				if got := addrAttr(t, m, stun.AttrOtherAddress); got != testAddrs[roleAltBoth] {
					t.Errorf("OTHER-ADDRESS %v", got)
				}
			},
		},
		{name: "change port", req: request(t, ChangeRequest{Port: true}), action: actionAnswer, from: roleAltPort},
		{name: "change both", req: request(t, ChangeRequest{IP: true, Port: true}), action: actionAnswer, from: roleAltBoth},
		{name: "change none", req: request(t, ChangeRequest{}), action: actionAnswer, from: rolePrimary},
		{
			name: "change ip from alternate ip", local: roleAltIP, req: request(t, ChangeRequest{IP: true}),
			action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				if got := addrAttr(t, m, stun.AttrOtherAddress); got != testAddrs[roleAltPort] {
					t.Errorf("OTHER-ADDRESS %v", got)
				}
			},
		},
		{name: "response port", req: request(t, ResponsePort(5000)), action: actionAnswer, from: rolePrimary, toPort: 5000},
		{
			name: "padding", req: request(t, Padding(1500)), action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				var p Padding
				if err := p.GetFrom(m); err != nil || p != 1500 {
					t.Errorf("PADDING %d, %v", p, err)
				}
			},
		},
		{
			name: "padding follows the request", req: request(t, Padding(100)), action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				var p Padding
				if err := p.GetFrom(m); err != nil || p != 100 {
					t.Errorf("PADDING %d, %v", p, err)
				}
			},
		},
		{
			name: "padding capped", req: request(t, stun.RawAttribute{Type: stun.AttrPadding, Value: make([]byte, 4000)}),
			action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				var p Padding
				if err := p.GetFrom(m); err != nil || p != MaxPadding {
					t.Errorf("PADDING %d, %v", p, err)
				}
			},
		},
		{name: "padding and response port", req: request(t, Padding(8), ResponsePort(5000)), action: actionRefuse, code: 400},
		{name: "response port 0", req: request(t, ResponsePort(0)), action: actionRefuse, code: 400},
		{name: "response port over tcp", tr: transportTCP, req: request(t, ResponsePort(5000)), action: actionRefuse, code: 400},
		{name: "change over tcp", tr: transportTCP, req: request(t, ChangeRequest{Port: true}), action: actionRefuse, code: 400},
		{name: "binding over tcp", tr: transportTCP, req: natdiscoveryPlain, action: actionAnswer, from: rolePrimary},
		{
			name: "malformed change request", action: actionRefuse, code: 400,
			req: request(t, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 4}}),
		},
		{
			name: "change without alternate", h: plainHandler(), req: request(t, ChangeRequest{IP: true}),
			action: actionRefuse, code: 420,
			check: func(t *testing.T, m *stun.Message) {
				var ua stun.UnknownAttributes
				if err := ua.GetFrom(m); err != nil || !slices.Equal(ua, stun.UnknownAttributes{stun.AttrChangeRequest}) {
					t.Errorf("UNKNOWN-ATTRIBUTES %v, %v", ua, err)
				}
			},
		},
		{
			name: "plain server", h: plainHandler(), req: natdiscoveryPlain, action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				if m.Contains(stun.AttrOtherAddress) {
					t.Error("OTHER-ADDRESS without an alternate address")
				}
				if got := addrAttr(t, m, stun.AttrResponseOrigin); got != testAddrs[rolePrimary] {
					t.Errorf("RESPONSE-ORIGIN %v", got)
				}
			},
		},
		{
			name: "unknown required attributes", action: actionRefuse, code: 420,
			req: request(t,
				stun.RawAttribute{Type: 0x0002, Value: make([]byte, 8)}, // RFC 3489 RESPONSE-ADDRESS
				stun.RawAttribute{Type: 0x7777, Value: []byte{1}},
				stun.RawAttribute{Type: 0x7777, Value: []byte{2}},
				stun.RawAttribute{Type: 0x8888, Value: []byte{3}}),
			check: func(t *testing.T, m *stun.Message) {
				var ua stun.UnknownAttributes
				if err := ua.GetFrom(m); err != nil || !slices.Equal(ua, stun.UnknownAttributes{0x0002, 0x7777}) {
					t.Errorf("UNKNOWN-ATTRIBUTES %v, %v", ua, err)
				}
			},
		},
		{
			name: "unknown optional attribute", action: actionAnswer, from: rolePrimary,
			req: request(t, stun.RawAttribute{Type: 0x8888, Value: []byte{3}}),
		},
		{name: "fingerprint good", req: request(t, stun.Fingerprint), action: actionAnswer, from: rolePrimary},
		{
			name: "fingerprint bad", action: actionDrop,
			req: func() []byte {
				b := request(t, stun.Fingerprint)
				b[len(b)-1] ^= 1
				return b
			}(),
		},
		{
			name: "fingerprint not last", action: actionDrop,
			req: func() []byte {
				b := request(t, stun.Fingerprint)
				m := new(stun.Message)
				_ = stun.Decode(b, m)
				m.Add(stun.AttrSoftware, []byte("late"))
				return m.Raw
			}(),
		},
		{name: "indication", req: stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication)).Raw, action: actionIgnore},
		{name: "response", req: stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw, action: actionIgnore},
		{name: "allocate", req: stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw, action: actionIgnore},
		{name: "empty", req: nil, action: actionDrop},
		{name: "short", req: natdiscoveryPlain[:19], action: actionDrop},
		{name: "rtp", req: append([]byte{0x80, 0x00}, natdiscoveryPlain[2:]...), action: actionDrop},
		{name: "length past the end", req: append(slices.Clone(natdiscoveryPlain[:2]), append([]byte{0, 8}, natdiscoveryPlain[4:]...)...), action: actionDrop},
		{name: "trailing bytes", req: append(slices.Clone(natdiscoveryPlain), 0, 0, 0, 0), action: actionDrop},
		{name: "length not a multiple of 4", req: append(append(slices.Clone(natdiscoveryPlain[:2]), 0, 2), append(slices.Clone(natdiscoveryPlain[4:]), 0, 0)...), action: actionDrop},
		{
			name: "attribute past the end", action: actionDrop,
			req: func() []byte {
				b := append(slices.Clone(natdiscoveryPlain), 0x80, 0x22, 0, 9, 'a', 'b', 'c', 'd')
				binary.BigEndian.PutUint16(b[2:4], 8)
				return b
			}(),
		},
		{
			name: "rfc3489", req: stund0, action: actionAnswer, from: rolePrimary,
			check: func(t *testing.T, m *stun.Message) {
				if got := addrAttr(t, m, stun.AttrMappedAddress); got != testClient {
					t.Errorf("MAPPED-ADDRESS %v", got)
				}
				if got := addrAttr(t, m, stun.AttrSourceAddress); got != testAddrs[rolePrimary] {
					t.Errorf("SOURCE-ADDRESS %v", got)
				}
				if got := addrAttr(t, m, stun.AttrChangedAddress); got != testAddrs[roleAltBoth] {
					t.Errorf("CHANGED-ADDRESS %v", got)
				}
				for _, a := range m.Attributes {
					if a.Length%4 != 0 {
						t.Errorf("%s of length %d: RFC 3489 clients need multiples of 4", a.Type, a.Length)
					}
					if a.Type == stun.AttrXORMappedAddress || a.Type == stun.AttrFingerprint {
						t.Errorf("%s in an RFC 3489 answer", a.Type)
					}
				}
			},
		},
		{
			name: "rfc3489 change ip", req: stund4, action: actionAnswer, from: roleAltIP,
			check: func(t *testing.T, m *stun.Message) {
				if got := addrAttr(t, m, stun.AttrSourceAddress); got != testAddrs[roleAltIP] {
					t.Errorf("SOURCE-ADDRESS %v", got)
				}
			},
		},
		{
			name: "rfc3489 unknown attribute", action: actionRefuse, code: 420,
			req: func() []byte {
				b := append(slices.Clone(stund0), 0, 2, 0, 8, 0, 1, 0, 80, 192, 0, 2, 1) // RESPONSE-ADDRESS
				binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-headerSize))
				return b
			}(),
			check: func(t *testing.T, m *stun.Message) {
				for _, a := range m.Attributes {
					if a.Length%4 != 0 {
						t.Errorf("%s of length %d in an RFC 3489 answer", a.Type, a.Length)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			if h == nil {
				h = rfc5780Handler()
			}
			tr := tc.tr
			if tr == transportUnknown {
				tr = transportUDP
			}
			in, out := stun.New(), stun.New()
			d := h.handle(tc.req, tr, tc.local, testClient, in, out)
			if d.action != tc.action || d.code != tc.code {
				t.Fatalf("got %s %d (%v), want %s %d", d.action, d.code, d.err, tc.action, tc.code)
			}
			if d.action != actionAnswer && d.action != actionRefuse {
				return
			}
			wantTo := testClient
			if tc.toPort != 0 {
				wantTo = netip.AddrPortFrom(testClient.Addr(), tc.toPort)
			}
			if d.to != wantTo {
				t.Errorf("to %v, want %v", d.to, wantTo)
			}
			wantFrom := tc.from
			if d.action == actionRefuse {
				wantFrom = tc.local
			}
			if d.from != wantFrom {
				t.Errorf("from %s, want %s", d.from, wantFrom)
			}
			// The transaction ID comes back: 16 bytes for RFC 3489
			// (no cookie), else the cookie and 12.
			if !bytes.Equal(out.Raw[4:headerSize], tc.req[4:headerSize]) {
				t.Errorf("transaction ID %x, want %x", out.Raw[4:headerSize], tc.req[4:headerSize])
			}
			m := decodeAnswer(t, out.Raw, d.legacy)
			wantType := stun.BindingSuccess
			if d.action == actionRefuse {
				wantType = stun.BindingError
				if got := errorCode(t, m); got != tc.code {
					t.Errorf("ERROR-CODE %d", got)
				}
			}
			if m.Type != wantType {
				t.Errorf("type %s, want %s", m.Type, wantType)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// FuzzHandle feeds the request handler anything, as either transport and
// on any socket, with and without an alternate address. Beyond not
// panicking it must: answer only with a message that decodes, is a
// Binding response of the request's transaction, and is at most a fixed
// overhead larger than the request (no amplification); and send only to
// the request's source IP (no reflection to a third party).
func FuzzHandle(f *testing.F) {
	for _, seed := range [][]byte{
		natdiscoveryPlain, stund0, stund4,
		request(f, stun.Fingerprint),
		request(f, ChangeRequest{IP: true, Port: true}, stun.NewSoftware("x"), stun.Fingerprint),
		request(f, ResponsePort(5000)),
		request(f, Padding(1500)),
		request(f, Padding(8), ResponsePort(5000)),
		request(f, stun.RawAttribute{Type: 0x0002, Value: make([]byte, 8)}),
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw,
	} {
		f.Add(seed, false, uint8(0))
		f.Add(seed, true, uint8(3))
	}
	handlers := []*handler{rfc5780Handler(), plainHandler()}
	f.Fuzz(func(t *testing.T, b []byte, tcp bool, local uint8) {
		tr := transportUDP
		if tcp {
			tr = transportTCP
		}
		for i, h := range handlers {
			r := role(local % numRoles)
			if i == 1 {
				r = rolePrimary
			}
			in, out := stun.New(), stun.New()
			d := h.handle(b, tr, r, testClient, in, out)
			switch d.action {
			case actionDrop, actionIgnore:
				continue
			case actionAnswer, actionRefuse:
			default:
				t.Fatalf("action %s", d.action)
			}
			if d.to.Addr() != testClient.Addr() {
				t.Fatalf("answer to %v for a request from %v", d.to, testClient)
			}
			if !h.own[d.from].IP.IsLoopback() {
				t.Fatalf("answer from unbound role %s", d.from)
			}
			if len(out.Raw) > len(b)+256 {
				t.Fatalf("answer of %d bytes to a request of %d", len(out.Raw), len(b))
			}
			if !bytes.Equal(out.Raw[4:headerSize], b[4:headerSize]) {
				t.Fatalf("transaction ID %x for %x", out.Raw[4:headerSize], b[4:headerSize])
			}
			m := decodeAnswer(t, out.Raw, d.legacy)
			if m.Type.Method != stun.MethodBinding || (m.Type.Class != stun.ClassSuccessResponse && m.Type.Class != stun.ClassErrorResponse) {
				t.Fatalf("answer of type %s", m.Type)
			}
		}
	})
}

// BenchmarkHandle is the packet path of a Binding request from the
// primary socket (natdiscovery's bare request) and of an RFC 5780 change.
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  []byte
	}{
		{"binding", natdiscoveryPlain},
		{"change-ip-port", request(b, ChangeRequest{IP: true, Port: true}, stun.Fingerprint)},
		{"rfc3489", stund4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := rfc5780Handler()
			in, out := stun.New(), stun.New()
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.req)))
			for b.Loop() {
				if d := h.handle(bc.req, transportUDP, rolePrimary, testClient, in, out); d.action != actionAnswer {
					b.Fatal(d.action, d.err)
				}
			}
		})
	}
}
