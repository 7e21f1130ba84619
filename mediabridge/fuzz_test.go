package mediabridge

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/emodel"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"go.uber.org/zap"
)

// addSDPSeeds adds every SDP file of testdata and testdata/sdp: offers and
// answers from Chrome, Firefox and Safari, and from Kamailio with
// rtpengine, Asterisk, FreeSWITCH and IMS cores.
func addSDPSeeds(f *testing.F) {
	for _, b := range allSDPSeeds(f) {
		f.Add(b)
	}
}

func fuzzEngine(f *testing.F) *Engine {
	e, err := NewEngine(testMediaConfig(), zap.NewNop())
	if err != nil {
		f.Fatalf("NewEngine: %v", err)
	}
	f.Cleanup(func() { _ = e.Close() })
	return e
}

// FuzzWebOffer feeds arbitrary browser offers; nothing may panic and a
// failure must come back as an error.
func FuzzWebOffer(f *testing.F) {
	addSDPSeeds(f)
	e := fuzzEngine(f)
	answer := answerFrom("127.0.0.1:9", "sendrecv", "0 PCMU/8000", "111 opus/48000/2")
	f.Fuzz(func(t *testing.T, offer []byte) {
		s, err := e.NewSession(zap.NewNop())
		if err != nil {
			t.Skip(err)
		}
		defer func() { _ = s.Close() }()
		toCore, err := s.WebOffer(offer)
		if err != nil {
			return
		}
		checkSDP(t, LegCore, toCore, offer)
		if toWeb, err := s.CoreAnswer(answer); err == nil {
			checkSDP(t, LegWeb, toWeb, offer, answer)
		}
	})
}

// FuzzCoreOffer feeds arbitrary core offers, then the same bytes as a
// browser answer.
func FuzzCoreOffer(f *testing.F) {
	addSDPSeeds(f)
	e := fuzzEngine(f)
	f.Fuzz(func(t *testing.T, offer []byte) {
		s, err := e.NewSession(zap.NewNop())
		if err != nil {
			t.Skip(err)
		}
		defer func() { _ = s.Close() }()
		toWeb, err := s.CoreOffer(offer)
		if err != nil {
			return
		}
		checkSDP(t, LegWeb, toWeb, offer)
		if toCore, err := s.WebAnswer(offer); err == nil {
			checkSDP(t, LegCore, toCore, offer)
		}
	})
}

// FuzzWebRTCPacket feeds arbitrary datagrams from a browser address to the
// shared socket's handlers, as the poll loop would: STUN, DTLS, SRTP/SRTCP.
// Nothing may panic. The seeds are a browser's traffic: ICE checks signed
// with the session's credentials, DTLS ClientHellos, and RTP and RTCP
// protected with the session's inbound keys, so the answer, queue and
// forwarding paths all run. Every input meets the same state: fresh SRTP
// contexts (no replay window carried over) and an empty DTLS queue.
func FuzzWebRTCPacket(f *testing.F) {
	e := fuzzEngine(f)
	s, err := e.NewSession(zap.NewNop())
	if err != nil {
		f.Fatalf("NewSession: %v", err)
	}
	f.Cleanup(func() { _ = s.Close() })
	e.sock.rekey(s.ep, fuzzLocalUfrag, fuzzLocalPwd)
	s.fwd.pts.Store(testPTMap())
	discard := netip.MustParseAddrPort("127.0.0.1:9") // discard port: answers and media go nowhere
	s.fwd.setCoreRemote(discard)
	from := discard
	e.sock.learn(from, s.ep)
	for _, seeds := range [][][]byte{stunSeeds(f), dtlsSeeds(), srtpSeeds(f), plainRTPSeeds(f), plainRTCPSeeds(f)} {
		for _, b := range seeds {
			f.Add(b)
		}
	}
	f.Add(g711Packet(111))
	f.Add([]byte{0x80, 200, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0})
	in := newLoopScratch(e.sock.udp, e.tcp)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) == 0 || len(pkt) > maxPacket {
			return
		}
		switch b := pkt[0]; {
		case b <= 3:
			e.sock.handleSTUN(pkt, from)
		case b >= 20 && b <= 63:
			c := s.ep.dtls.Load()
			c.deliver(pkt)
			select {
			case <-c.in:
			default:
			}
		case b >= 128 && b <= 191:
			s.ep.useContexts(benchContext(t), benchContext(t))
			s.ep.receiveMedia(pkt, in)
		}
	})
}

// FuzzReoffer feeds arbitrary re-offers from either leg in the middle of a
// call, and the same bytes as the other leg's answer when the offer was
// carried on. Nothing may panic; a refused re-offer leaves the session
// able to take the next one.
func FuzzReoffer(f *testing.F) {
	addSDPSeeds(f)
	e := fuzzEngine(f)
	chrome, err := os.ReadFile(filepath.Join("testdata", "chrome-offer.sdp"))
	if err != nil {
		f.Fatal(err)
	}
	answer := answerFrom("127.0.0.1:9", "sendrecv", "0 PCMU/8000", "101 telephone-event/8000")
	f.Fuzz(func(t *testing.T, sdp []byte) {
		s, err := e.NewSession(zap.NewNop())
		if err != nil {
			t.Skip(err)
		}
		defer func() { _ = s.Close() }()
		if _, err := s.Offer(LegWeb, chrome); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Answer(LegCore, answer); err != nil {
			t.Fatal(err)
		}
		for _, leg := range []Leg{LegCore, LegWeb} {
			step, err := s.Offer(leg, sdp)
			if err != nil {
				continue
			}
			checkSDP(t, leg, step.Answer, chrome, answer, sdp)
			if step.Offer == nil {
				continue
			}
			checkSDP(t, leg.other(), step.Offer, chrome, answer, sdp)
			back, err := s.Answer(leg.other(), sdp)
			if err != nil {
				s.Rollback(leg.other())
				continue
			}
			checkSDP(t, leg, back.Answer, chrome, answer, sdp)
		}
		if _, err := s.Offer(LegCore, answer); err != nil && !errors.Is(err, ErrNoCommonCodec) {
			t.Fatalf("after the fuzzed offers a plain re-offer fails: %v", err)
		}
	})
}

// FuzzWebAnswer feeds arbitrary browser answers to the offer the gateway
// made from a core's offer (a call to the web: Asterisk, Kamailio with
// rtpengine, FreeSWITCH, IMS), then the same answer again as a browser
// repeats its 18x answer in its 200. Nothing may panic; an answer taken
// gives the core an RTP/AVP answer that parses, and the repeat changes
// nothing the core hears.
func FuzzWebAnswer(f *testing.F) {
	offers := coreOffers(f)
	for i := range offers {
		for _, name := range sdpSeedFiles(f, "web-*-answer*.sdp") {
			f.Add(uint8(i), readSeed(f, name))
		}
	}
	for _, b := range allSDPSeeds(f) {
		f.Add(uint8(0), b)
	}
	e := fuzzEngine(f)
	f.Fuzz(func(t *testing.T, which uint8, answer []byte) {
		answerTwice(t, e, LegCore, offers[int(which)%len(offers)], answer)
	})
}

// FuzzCoreAnswer feeds arbitrary core answers to the offer the gateway made
// from a browser's offer (Chrome, Firefox, Safari; a call from the web),
// then the same answer again as a core sends its 183 answer in the 200.
// Nothing may panic; an answer taken gives the browser an ICE/DTLS answer
// that parses, and the repeat leaves it as it was.
func FuzzCoreAnswer(f *testing.F) {
	offers := browserOffers(f)
	for i := range offers {
		for _, name := range sdpSeedFiles(f, "core-*.sdp") {
			f.Add(uint8(i), readSeed(f, name))
		}
		f.Add(uint8(i), answerFrom("192.0.2.10:14562", "sendrecv", "0 PCMU/8000", "101 telephone-event/8000"))
	}
	for _, b := range allSDPSeeds(f) {
		f.Add(uint8(0), b)
	}
	e := fuzzEngine(f)
	f.Fuzz(func(t *testing.T, which uint8, answer []byte) {
		answerTwice(t, e, LegWeb, offers[int(which)%len(offers)], answer)
	})
}

// answerTwice makes a session take offer from one leg and answer from the
// other, then the same answer again (a 183's answer repeated in the 200).
// An answer taken must not ask for another offer, must give the offering
// leg a description checkSDP passes, and its repeat must change nothing.
func answerTwice(t *testing.T, e *Engine, offerer Leg, offer, answer []byte) {
	answerer := offerer.other()
	s, err := e.NewSession(zap.NewNop())
	if err != nil {
		t.Skip(err)
	}
	defer func() { _ = s.Close() }()
	step, err := s.Offer(offerer, offer)
	if err != nil {
		t.Fatalf("%s offer seed refused: %v", offerer, err)
	}
	checkSDP(t, answerer, step.Offer, offer)
	got, err := s.Answer(answerer, answer)
	if err != nil {
		return
	}
	if got.Offer != nil {
		t.Fatalf("the %s's answer to the %s's offer asks for another offer:\n%s", answerer, offerer, got.Offer)
	}
	checkSDP(t, offerer, got.Answer, offer, answer)
	again, err := s.Answer(answerer, answer)
	if err != nil {
		t.Fatalf("the %s's answer repeated: %v", answerer, err)
	}
	if !bytes.Equal(again.Answer, got.Answer) {
		t.Fatalf("the %s's answer repeated changed the %s's answer:\n%s\nthen\n%s", answerer, offerer, got.Answer, again.Answer)
	}
}

// coreForbidden are attributes of a browser's transport that a description
// for the core never carries.
var coreForbidden = []string{
	"a=ice-", "a=candidate", "a=fingerprint", "a=setup", "a=ssrc", "a=msid", "a=rtcp-mux",
	"a=extmap", "a=group", "a=end-of-candidates", "a=rtcp-fb",
}

// checkSDP checks a description the session wrote for leg `to` (nothing
// when body is nil): CRLF lines only, it parses again with pion/sdp, it
// has one live m-line, audio in the leg's profile (RTP/AVP toward the
// core, UDP/TLS/RTP/SAVPF with ICE and DTLS toward a browser), and its size
// is bounded by the descriptions it was made from: the session's own part
// is of fixed size and an m-line carried over (rejected) is at most the
// m-line it came from.
func checkSDP(t *testing.T, to Leg, body []byte, from ...[]byte) {
	t.Helper()
	if body == nil {
		return
	}
	in := 0
	for _, b := range from {
		in += len(b)
	}
	if len(body) > 4*in+8192 {
		t.Fatalf("%s description of %d bytes from %d bytes of input", to, len(body), in)
	}
	if bytes.Count(body, []byte("\n")) != bytes.Count(body, []byte("\r\n")) ||
		bytes.Count(body, []byte("\r")) != bytes.Count(body, []byte("\r\n")) {
		t.Fatalf("%s description with a line not ended by CRLF:\n%q", to, body)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		t.Fatalf("%s description does not parse again: %v\n%s", to, err, body)
	}
	var live []*sdp.MediaDescription
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value != 0 {
			live = append(live, md)
		}
	}
	if len(live) != 1 || live[0].MediaName.Media != "audio" || len(live[0].MediaName.Formats) == 0 {
		t.Fatalf("%s description without exactly one live audio m-line with formats:\n%s", to, body)
	}
	md := live[0]
	if to == LegCore {
		if p := protoString(md); p != "RTP/AVP" {
			t.Fatalf("core description with audio over %s:\n%s", p, body)
		}
		for _, line := range strings.Split(string(body), "\r\n") {
			for _, p := range coreForbidden {
				if strings.HasPrefix(line, p) {
					t.Fatalf("core description with the browser's %q:\n%s", line, body)
				}
			}
		}
		return
	}
	if p := protoString(md); p != "UDP/TLS/RTP/SAVPF" {
		t.Fatalf("web description with audio over %s:\n%s", p, body)
	}
	for _, key := range []string{"ice-ufrag", "ice-pwd", "fingerprint", "setup", "rtcp-mux", "candidate", "mid"} {
		if _, ok := md.Attribute(key); !ok {
			t.Fatalf("web description without a=%s:\n%s", key, body)
		}
	}
}

// FuzzRTCPReports feeds arbitrary datagrams to a leg's report reader, as
// the core's RTCP port and the browser's decrypted SRTCP reach it, on a leg
// that has carried media both ways; then the gateway's own report for that
// leg is built and must marshal. Nothing may panic.
func FuzzRTCPReports(f *testing.F) {
	for _, b := range plainRTCPSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	now := time.Now()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var l legQoS
		for seq := uint16(1); seq < 40; seq++ {
			if seq%7 != 0 {
				l.rx.receive(bareRTP(0x5eed, seq, uint32(seq)*160), 8000, now.Add(time.Duration(seq)*20*time.Millisecond), now)
			}
			l.tx.sent(bareRTP(3490847957, seq, uint32(seq)*160), 8000, now)
		}
		l.readReports(pkt, 3490847957, now)
		fig := l.figures()
		rate(&fig, emodel.CodecNamed("PCMU"))
		if fig.MOS < 0 || fig.MOS > 4.5 {
			t.Fatalf("MOS %v", fig.MOS)
		}
		if _, err := rtcp.Marshal(l.compound(1, "cname", now)); err != nil {
			t.Fatalf("our report does not marshal after %x: %v", pkt, err)
		}
	})
}
