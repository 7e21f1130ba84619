package mediabridge

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/stun/v4"
	"go.uber.org/zap"
)

func addSDPSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil {
		f.Fatalf("glob: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatalf("read seed: %v", err)
		}
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
		if _, err := s.WebOffer(offer); err != nil {
			return
		}
		_, _ = s.CoreAnswer(answer)
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
		if _, err := s.CoreOffer(offer); err != nil {
			return
		}
		_, _ = s.WebAnswer(offer)
	})
}

// FuzzWebRTCPacket feeds arbitrary datagrams from a browser address to the
// shared socket's handlers, as the poll loop would: STUN, DTLS, SRTP/SRTCP.
// Nothing may panic; a valid-looking check signed with the session's
// password exercises the answer path.
func FuzzWebRTCPacket(f *testing.F) {
	e := fuzzEngine(f)
	s, err := e.NewSession(zap.NewNop())
	if err != nil {
		f.Fatalf("NewSession: %v", err)
	}
	f.Cleanup(func() { _ = s.Close() })
	s.fwd.pts.Store(testPTMap())
	s.ep.useContexts(benchContext(f), benchContext(f))
	from := netip.MustParseAddrPort("127.0.0.1:9") // discard port: answers go nowhere
	e.sock.learn(from, s.ep)
	check, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(s.ep.localUfrag+":b"),
		stun.NewShortTermIntegrity(s.ep.localPwd), stun.Fingerprint)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(check.Raw)
	f.Add(g711Packet(111))
	f.Add([]byte{0x80, 200, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0})
	in := newLoopScratch(e.sock.udp)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) == 0 || len(pkt) > maxPacket {
			return
		}
		switch b := pkt[0]; {
		case b <= 3:
			e.sock.handleSTUN(pkt, from)
		case b >= 20 && b <= 63:
			s.ep.dtls.Load().deliver(pkt)
		case b >= 128 && b <= 191:
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
			if err == nil && step.Offer != nil {
				if _, err := s.Answer(leg.other(), sdp); err != nil {
					s.Rollback(leg.other())
				}
			}
		}
		if _, err := s.Offer(LegCore, answer); err != nil && !errors.Is(err, ErrNoCommonCodec) {
			t.Fatalf("after the fuzzed offers a plain re-offer fails: %v", err)
		}
	})
}
