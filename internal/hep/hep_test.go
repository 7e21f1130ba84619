package hep

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/siptap"
)

// chunks reads a HEP v3 packet back: chunk type → value.
func chunks(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	if len(b) < 6 || string(b[:4]) != "HEP3" || int(binary.BigEndian.Uint16(b[4:])) != len(b) {
		t.Fatalf("not a HEP3 packet of its stated length: %x", b)
	}
	out := map[uint16][]byte{}
	for rest := b[6:]; len(rest) > 0; {
		if len(rest) < 6 {
			t.Fatalf("truncated chunk header: %x", rest)
		}
		vendor, typ, n := binary.BigEndian.Uint16(rest), binary.BigEndian.Uint16(rest[2:]), int(binary.BigEndian.Uint16(rest[4:]))
		if vendor != 0 || n < 6 || n > len(rest) {
			t.Fatalf("chunk %d: vendor %d length %d of %d", typ, vendor, n, len(rest))
		}
		out[typ] = rest[6:n]
		rest = rest[n:]
	}
	return out
}

func TestEncode(t *testing.T) {
	at := time.Unix(1700000000, 123456000)
	for _, tc := range []struct {
		name     string
		p        packet
		family   uint8
		src, dst []byte
	}{
		{"IPv4 over TCP (a WebSocket leg)", packet{at: at, src: netip.MustParseAddrPort("192.0.2.7:50123"), dst: netip.MustParseAddrPort("198.51.100.1:443"),
			ipProto: ipProtoTCP, protoType: protoSIP, payload: []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")}, familyIPv4, []byte{192, 0, 2, 7}, []byte{198, 51, 100, 1}},
		{"IPv6 with a correlation", packet{at: at, src: netip.MustParseAddrPort("[2001:db8::1]:5060"), dst: netip.MustParseAddrPort("[2001:db8::2]:5062"),
			ipProto: ipProtoUDP, protoType: protoQoSJSON, correlation: "abc@h", payload: []byte(`{}`)}, familyIPv6,
			netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chunks(t, encode(tc.p, 2001, "s3cret"))
			want := map[uint16][]byte{
				chunkFamily: {tc.family}, chunkProto: {tc.p.ipProto}, chunkProtoType: {tc.p.protoType},
				chunkSrcPort: binary.BigEndian.AppendUint16(nil, tc.p.src.Port()), chunkDstPort: binary.BigEndian.AppendUint16(nil, tc.p.dst.Port()),
				chunkTimeSec: binary.BigEndian.AppendUint32(nil, 1700000000), chunkTimeUsec: binary.BigEndian.AppendUint32(nil, 123456),
				chunkAgentID: binary.BigEndian.AppendUint32(nil, 2001), chunkAuthKey: []byte("s3cret"), chunkPayload: tc.p.payload,
			}
			if tc.family == familyIPv4 {
				want[chunkSrcIPv4], want[chunkDstIPv4] = tc.src, tc.dst
			} else {
				want[chunkSrcIPv6], want[chunkDstIPv6] = tc.src, tc.dst
			}
			if tc.p.correlation != "" {
				want[chunkCorrelate] = []byte(tc.p.correlation)
			}
			for typ, v := range want {
				if string(c[typ]) != string(v) {
					t.Errorf("chunk %d = %x, want %x", typ, c[typ], v)
				}
			}
			if len(c) != len(want) {
				t.Errorf("%d chunks, want %d", len(c), len(want))
			}
		})
	}
}

// TestExporterSendsSIP: a message received on the web leg goes from the
// browser to the gateway, one sent on the core leg from the gateway to the
// core, over UDP as it went; the collector gets both.
func TestExporterSendsSIP(t *testing.T) {
	coll, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	e, err := New(configs.HEP{Address: coll.LocalAddr().String(), ID: 7}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	browser, gwWS := netip.MustParseAddrPort("127.0.0.9:40000"), netip.MustParseAddrPort("127.0.0.1:8080")
	gwSIP, core := netip.MustParseAddrPort("127.0.0.1:5070"), netip.MustParseAddrPort("127.0.0.1:5060")
	e.SIPMessage(&siptap.Message{At: time.Now(), Leg: siptap.LegWeb, Dir: siptap.In, Transport: "WS", Local: gwWS, Remote: browser, Raw: []byte("INVITE sip:a SIP/2.0\r\n\r\n")})
	e.SIPMessage(&siptap.Message{At: time.Now(), Leg: siptap.LegCore, Dir: siptap.Out, Transport: "UDP", Local: gwSIP, Remote: core, Raw: []byte("INVITE sip:b SIP/2.0\r\n\r\n")})
	e.Close()
	buf := make([]byte, 2048)
	for i, want := range []struct {
		proto    uint8
		src, dst netip.AddrPort
		first    string
	}{{ipProtoTCP, browser, gwWS, "INVITE sip:a"}, {ipProtoUDP, gwSIP, core, "INVITE sip:b"}} {
		_ = coll.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := coll.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		c := chunks(t, buf[:n])
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(c[chunkSrcIPv4])), binary.BigEndian.Uint16(c[chunkSrcPort]))
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(c[chunkDstIPv4])), binary.BigEndian.Uint16(c[chunkDstPort]))
		if c[chunkProto][0] != want.proto || src != want.src || dst != want.dst || string(c[chunkPayload][:len(want.first)]) != want.first {
			t.Errorf("packet %d: proto %d %v → %v %q", i, c[chunkProto][0], src, dst, c[chunkPayload])
		}
	}
	if e.Sent.Load() != 2 || e.Dropped.Load() != 0 {
		t.Errorf("sent %d dropped %d", e.Sent.Load(), e.Dropped.Load())
	}
}
