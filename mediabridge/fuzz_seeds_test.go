package mediabridge

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/stun/v4"
)

// Seeds for the fuzz targets: SDP as browsers and SIP cores write it
// (testdata/sdp: web-* from Chrome, Firefox and Safari, core-* from
// Kamailio with rtpengine, Asterisk, FreeSWITCH and IMS), and datagrams as
// a browser sends them to the shared WebRTC port: ICE checks, DTLS
// ClientHellos, SRTP and SRTCP.

// sdpSeedFiles are the SDP files matching pattern under testdata/sdp, in
// name order.
func sdpSeedFiles(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sdp", pattern))
	if err != nil {
		tb.Fatalf("glob: %v", err)
	}
	sort.Strings(files)
	return files
}

func readSeed(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatalf("read seed: %v", err)
	}
	return b
}

// allSDPSeeds is every SDP file of testdata and testdata/sdp.
func allSDPSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil {
		tb.Fatalf("glob: %v", err)
	}
	files = append(files, sdpSeedFiles(tb, "*.sdp")...)
	out := make([][]byte, 0, len(files))
	for _, name := range files {
		out = append(out, readSeed(tb, name))
	}
	return out
}

// browserOffers are the first offers of Chrome, Firefox and Safari.
func browserOffers(tb testing.TB) [][]byte {
	tb.Helper()
	out := [][]byte{
		readSeed(tb, filepath.Join("testdata", "chrome-offer.sdp")),
		readSeed(tb, filepath.Join("testdata", "firefox-offer.sdp")),
		readSeed(tb, filepath.Join("testdata", "chrome-offer-datachannel.sdp")),
	}
	for _, name := range sdpSeedFiles(tb, "web-*-offer*.sdp") {
		out = append(out, readSeed(tb, name))
	}
	return out
}

// coreOffers are the first offers of the cores the gateway bridges a
// browser to, each with a codec in common with it.
func coreOffers(tb testing.TB) [][]byte {
	tb.Helper()
	out := [][]byte{readSeed(tb, filepath.Join("testdata", "asterisk-offer.sdp"))}
	for _, name := range []string{
		"core-kamailio-rtpengine-offer.sdp", "core-freeswitch-offer.sdp",
		"core-ims-amrwb-pcma-offer.sdp", "core-ims-evs-ipv6-offer.sdp",
	} {
		out = append(out, readSeed(tb, filepath.Join("testdata", "sdp", name)))
	}
	return out
}

// The ICE checks are signed with fixed credentials of ours (the fuzz
// target rekeys its session with them), so the seeds pass MESSAGE-INTEGRITY
// from one run to the next.
const (
	fuzzLocalUfrag  = "fZq8Lm2x"
	fuzzLocalPwd    = "Q1w2E3r4T5y6U7i8O9p0AaSs"
	fuzzBrowserFrag = "ucee"
)

// attrGoogNetworkInfo is Chrome's GOOG-NETWORK-INFO (network id, cost),
// sent in every check.
const attrGoogNetworkInfo stun.AttrType = 0xC057

type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error {
	m.Add(a.t, a.v)
	return nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// stunSeeds are ICE traffic as browsers send it to an ICE-lite peer
// (RFC 8445 §7.2.4, RFC 7675): checks from Chrome and Firefox with and
// without nomination, a consent check, checks that must be refused, a
// keepalive indication and a stray response.
func stunSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	tid := func(n byte) stun.Setter {
		var id [stun.TransactionIDSize]byte
		for i := range id {
			id[i] = n + byte(i)
		}
		return stun.NewTransactionIDSetter(id)
	}
	user := stun.NewUsername(fuzzLocalUfrag + ":" + fuzzBrowserFrag)
	integrity := stun.NewShortTermIntegrity(fuzzLocalPwd)
	googNet := rawAttr{attrGoogNetworkInfo, []byte{0, 1, 0, 10}}
	controlling := rawAttr{stun.AttrICEControlling, u64(0x1c2f3e4d5a697887)}
	controlled := rawAttr{stun.AttrICEControlled, u64(0x0102030405060708)}
	useCandidate := rawAttr{stun.AttrUseCandidate, nil}
	priority := func(p uint32) rawAttr { return rawAttr{stun.AttrPriority, u32(p)} }
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(setters...)
		if err != nil {
			tb.Fatalf("stun seed: %v", err)
		}
		return m.Raw
	}
	return [][]byte{
		// Chrome: a nominating check (the order Chrome writes them in).
		build(tid(1), stun.BindingRequest, user, googNet, controlling, useCandidate, priority(1853824767), integrity, stun.Fingerprint),
		// Chrome: a check before nomination, from a relay candidate.
		build(tid(2), stun.BindingRequest, user, googNet, controlling, priority(41885439), integrity, stun.Fingerprint),
		// Firefox: aggressive nomination, no network info.
		build(tid(3), stun.BindingRequest, user, priority(1853759231), useCandidate, controlling, integrity, stun.Fingerprint),
		// Safari: an IPv6 host check.
		build(tid(4), stun.BindingRequest, user, googNet, controlling, useCandidate, priority(1845501695), integrity, stun.Fingerprint),
		// Consent freshness (RFC 7675), every 5 s from Chrome.
		build(tid(5), stun.BindingRequest, user, googNet, controlling, priority(1853824767), integrity, stun.Fingerprint),
		// A browser that took the controlled role.
		build(tid(6), stun.BindingRequest, user, controlled, priority(1853824767), integrity, stun.Fingerprint),
		// Signed with the wrong password.
		build(tid(7), stun.BindingRequest, user, controlling, useCandidate, priority(1853824767),
			stun.NewShortTermIntegrity("not-the-password-at-all0"), stun.Fingerprint),
		// A ufrag no session has.
		build(tid(8), stun.BindingRequest, stun.NewUsername("nobody00:"+fuzzBrowserFrag), controlling, priority(1853824767), integrity, stun.Fingerprint),
		// No FINGERPRINT.
		build(tid(9), stun.BindingRequest, user, controlling, priority(1853824767), integrity),
		// A keepalive indication (RFC 8445 §11).
		build(tid(10), stun.NewType(stun.MethodBinding, stun.ClassIndication), stun.Fingerprint),
		// A success response nobody asked for.
		build(tid(11), stun.BindingSuccess, &stun.XORMappedAddress{IP: []byte{203, 0, 113, 45}, Port: 54187}, integrity, stun.Fingerprint),
	}
}

// handshake wraps a DTLS handshake body in its record and handshake headers
// (RFC 6347 §4.1, §4.2.2), unfragmented.
func dtlsHandshake(recordVersion uint16, msgType byte, seq uint16, body []byte) []byte {
	hs := []byte{msgType}
	hs = append(hs, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	hs = binary.BigEndian.AppendUint16(hs, seq)
	hs = append(hs, 0, 0, 0) // fragment offset
	hs = append(hs, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	hs = append(hs, body...)
	return dtlsRecord(22, recordVersion, 0, uint64(seq), hs)
}

func dtlsRecord(contentType byte, version, epoch uint16, seq uint64, payload []byte) []byte {
	r := []byte{contentType}
	r = binary.BigEndian.AppendUint16(r, version)
	r = binary.BigEndian.AppendUint16(r, epoch)
	r = append(r, byte(seq>>40), byte(seq>>32), byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq))
	r = binary.BigEndian.AppendUint16(r, uint16(len(payload)))
	return append(r, payload...)
}

type tlsExt struct {
	t uint16
	v []byte
}

// clientHello is a DTLS 1.2 ClientHello body (RFC 5246 §7.4.1.2 with the
// RFC 6347 cookie) with the use_srtp extension (RFC 5764 §4.1.1).
func clientHello(cookie []byte, suites []uint16, exts []tlsExt) []byte {
	b := []byte{0xfe, 0xfd}
	for i := range 32 {
		b = append(b, byte(0x5a^i*7))
	}
	b = append(b, 0) // no session id
	b = append(b, byte(len(cookie)))
	b = append(b, cookie...)
	b = binary.BigEndian.AppendUint16(b, uint16(2*len(suites)))
	for _, s := range suites {
		b = binary.BigEndian.AppendUint16(b, s)
	}
	b = append(b, 1, 0) // null compression
	var e []byte
	for _, x := range exts {
		e = binary.BigEndian.AppendUint16(e, x.t)
		e = binary.BigEndian.AppendUint16(e, uint16(len(x.v)))
		e = append(e, x.v...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
	return append(b, e...)
}

func u16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// lengthPrefixed16 is a list with its two-byte length.
func lengthPrefixed16(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// dtlsSeeds are the DTLS records a browser opens with: Chrome's
// (BoringSSL) and Firefox's (NSS) ClientHello, Chrome's second one with
// the cookie of a HelloVerifyRequest, and records that come later (an
// alert, a ChangeCipherSpec, epoch-1 data).
func dtlsSeeds() [][]byte {
	useSRTP := tlsExt{0x000e, append(lengthPrefixed16(u16s(0x0007, 0x0008, 0x0001, 0x0002)), 0)}
	ems := tlsExt{0x0017, nil}
	reneg := tlsExt{0xff01, []byte{0}}
	points := tlsExt{0x000b, []byte{1, 0}}
	chromeSuites := []uint16{0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	chromeExts := []tlsExt{
		ems, reneg,
		{0x000a, lengthPrefixed16(u16s(0x001d, 0x0017, 0x0018))},
		points,
		{0x000d, lengthPrefixed16(u16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601))},
		useSRTP,
	}
	firefoxSuites := []uint16{0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009, 0xc013, 0xc014, 0x0033, 0x0039, 0x002f, 0x0035}
	firefoxExts := []tlsExt{
		ems, reneg,
		{0x000a, lengthPrefixed16(u16s(0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101))},
		points,
		{0x000d, lengthPrefixed16(u16s(0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201))},
		useSRTP,
	}
	cookie := make([]byte, 20)
	for i := range cookie {
		cookie[i] = byte(0xc0 + i)
	}
	return [][]byte{
		dtlsHandshake(0xfeff, 1, 0, clientHello(nil, chromeSuites, chromeExts)),
		dtlsHandshake(0xfeff, 1, 1, clientHello(cookie, chromeSuites, chromeExts)),
		dtlsHandshake(0xfeff, 1, 0, clientHello(nil, firefoxSuites, firefoxExts)),
		dtlsRecord(21, 0xfefd, 0, 5, []byte{2, 40}),         // fatal handshake_failure
		dtlsRecord(20, 0xfefd, 0, 6, []byte{1}),             // ChangeCipherSpec
		dtlsRecord(23, 0xfefd, 1, 1, make([]byte, 8+16+24)), // application data, epoch 1
	}
}

// plainRTPSeeds are RTP packets as Chrome sends audio (RFC 8285 one-byte
// extensions: audio level, abs-send-time, transport-wide sequence, mid),
// Firefox's opus and a telephone-event (RFC 4733) in Chrome's 8 kHz type.
func plainRTPSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	pkt := func(h rtp.Header, payload []byte) []byte {
		b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			tb.Fatalf("rtp seed: %v", err)
		}
		return b
	}
	chrome := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 27001, Timestamp: 3845600960, SSRC: 1700681106,
		Extension: true, ExtensionProfile: 0xBEDE}
	for _, x := range []struct {
		id uint8
		v  []byte
	}{{1, []byte{0x80 | 42}}, {2, []byte{0x3a, 0x81, 0x1f}}, {3, []byte{0x01, 0x2c}}, {4, []byte("0")}} {
		if err := chrome.SetExtension(x.id, x.v); err != nil {
			tb.Fatalf("rtp seed: %v", err)
		}
	}
	opus := make([]byte, 83) // a 20 ms voice frame, SILK 32 kbit/s
	opus[0] = 0x78
	firefox := rtp.Header{Version: 2, PayloadType: 109, Marker: true, SequenceNumber: 1, Timestamp: 960, SSRC: 94000859,
		Extension: true, ExtensionProfile: 0xBEDE}
	if err := firefox.SetExtension(1, []byte{0x80 | 127}); err != nil {
		tb.Fatalf("rtp seed: %v", err)
	}
	digit := rtp.Header{Version: 2, PayloadType: 126, Marker: true, SequenceNumber: 27002, Timestamp: 3845601920, SSRC: 1700681106}
	pcmu := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 500, Timestamp: 80000, SSRC: 4228631675}
	return [][]byte{
		pkt(chrome, opus),
		pkt(firefox, []byte{0xf8, 0xff, 0xfe}), // DTX comfort frame
		pkt(digit, []byte{5, 0x0a, 0x00, 0xa0}),
		pkt(digit, []byte{5, 0x8a, 0x03, 0x20}), // the same digit's end
		pkt(pcmu, make([]byte, 160)),
	}
}

// plainRTCPSeeds are RTCP as browsers send it with rtcp-mux: Chrome's
// compound sender report with its CNAME, a receiver report, and the
// reduced-size (RFC 5506) feedback a browser sends alone.
func plainRTCPSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	const ssrc, ours = 1700681106, 3490847957
	report := rtcp.ReceptionReport{SSRC: ours, FractionLost: 3, TotalLost: 12, LastSequenceNumber: 0x00017a31,
		Jitter: 57, LastSenderReport: 0x8f5c1234, Delay: 6554}
	tcc := &rtcp.TransportLayerCC{SenderSSRC: ssrc, MediaSSRC: ours, BaseSequenceNumber: 300, PacketStatusCount: 2,
		ReferenceTime: 4057, FbPktCount: 9,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 2}},
		RecvDeltas: []*rtcp.RecvDelta{
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 4000},
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 20000},
		}}
	// pion/rtcp writes the header it is given: FMT 15, RTPFB, padded to
	// words, and the length in words minus one.
	tcc.Header = rtcp.Header{Padding: true, Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Length: tcc.Len()/4 - 1}
	packets := [][]rtcp.Packet{
		{
			&rtcp.SenderReport{SSRC: ssrc, NTPTime: 0xeb2c3f1a80000000, RTPTime: 3845600960, PacketCount: 250, OctetCount: 20750,
				Reports: []rtcp.ReceptionReport{report}},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: ssrc,
				Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "kE9Qyr6lPzmirJWn"}}}}},
		},
		{
			&rtcp.ReceiverReport{SSRC: ssrc, Reports: []rtcp.ReceptionReport{report}},
			&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: ssrc,
				Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "{9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f}"}}}}},
		},
		{&rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ours, Nacks: []rtcp.NackPair{{PacketID: 1200, LostPackets: 0x0005}}}},
		{tcc},
		{&rtcp.Goodbye{Sources: []uint32{ssrc}, Reason: "bye"}},
	}
	out := make([][]byte, 0, len(packets))
	for _, p := range packets {
		b, err := rtcp.Marshal(p)
		if err != nil {
			tb.Fatalf("rtcp seed: %v", err)
		}
		out = append(out, b)
	}
	return out
}

// srtpSeeds are the RTP and RTCP seeds protected with benchContext's keys,
// which the fuzz target installs as its session's inbound context, so they
// decrypt and go on to the forwarder.
func srtpSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	enc := benchContext(tb)
	var out [][]byte
	for _, p := range plainRTPSeeds(tb) {
		b, err := enc.EncryptRTP(nil, p, nil)
		if err != nil {
			tb.Fatalf("srtp seed: %v", err)
		}
		out = append(out, b)
	}
	for _, p := range plainRTCPSeeds(tb) {
		b, err := enc.EncryptRTCP(nil, p, nil)
		if err != nil {
			tb.Fatalf("srtcp seed: %v", err)
		}
		out = append(out, b)
	}
	return out
}

// TestSDPSeeds: every seed parses with pion/sdp, and each offer among them
// is taken by the leg it comes from, but for the VoLTE offer with AMR-WB
// and AMR alone, which has no codec in common with a browser.
func TestSDPSeeds(t *testing.T) {
	e := newTestEngine(t)
	for _, name := range sdpSeedFiles(t, "*.sdp") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			body := readSeed(t, name)
			var sd sdp.SessionDescription
			if err := sd.Unmarshal(body); err != nil {
				t.Fatalf("does not parse: %v", err)
			}
			base := filepath.Base(name)
			if !strings.Contains(base, "-offer") {
				return
			}
			leg := LegCore
			if strings.HasPrefix(base, "web-") {
				leg = LegWeb
			}
			s := newTestSession(t, e)
			_, err := s.Offer(leg, body)
			switch {
			case base == "core-ims-amrwb-offer.sdp":
				if !errors.Is(err, ErrNoCommonCodec) {
					t.Fatalf("%s offer: %v, want %v", leg, err, ErrNoCommonCodec)
				}
			case err != nil:
				t.Fatalf("%s offer: %v", leg, err)
			}
		})
	}
}
