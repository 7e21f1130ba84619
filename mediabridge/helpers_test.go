package mediabridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/configs"
	"go.uber.org/zap"
)

// testRTPPorts is a range of its own so parallel packages do not collide;
// a pair taken by another process is skipped by the allocator anyway.
const testRTPPorts = "41000-41999"

func testMediaConfig(codecs ...string) configs.Media {
	if len(codecs) == 0 {
		codecs = []string{"opus", "PCMU", "PCMA", "G722", "telephone-event"}
	}
	return configs.Media{
		PublicIP:   "127.0.0.1",
		WebRTCPort: 0,
		RTPPorts:   testRTPPorts,
		Codecs:     codecs,
	}
}

// newTestEngine starts an engine on loopback and closes it when the test ends.
func newTestEngine(t testing.TB, codecs ...string) *Engine {
	t.Helper()
	return startTestEngine(t, testMediaConfig(codecs...))
}

// startTestEngine starts an engine of cfg and closes it when the test ends.
func startTestEngine(t testing.TB, cfg configs.Media, opts ...EngineOption) *Engine {
	t.Helper()
	e, err := NewEngine(cfg, zap.NewNop(), opts...)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return e
}

func newTestSession(t testing.TB, e *Engine) *Session {
	t.Helper()
	s, err := e.NewSession(zap.NewNop())
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("session close: %v", err)
		}
	})
	return s
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// webRTCOnlyPrefixes are SDP lines the core must never see.
var webRTCOnlyPrefixes = []string{
	"a=ice-", "a=candidate", "a=fingerprint", "a=setup", "a=group", "a=mid",
	"a=rtcp-mux", "a=rtcp-fb", "a=extmap", "a=ssrc", "a=msid", "a=end-of-candidates",
	"a=rtcp-rsize", "m=video", "m=application", "SAVPF",
}

func assertNoWebRTCLines(t *testing.T, coreSDP []byte) {
	t.Helper()
	for _, line := range strings.Split(string(coreSDP), "\r\n") {
		for _, p := range webRTCOnlyPrefixes {
			if strings.Contains(line, p) {
				t.Errorf("core sdp has WebRTC line %q", line)
			}
		}
	}
}

// sdpLines returns the lines of an SDP that start with prefix.
func sdpLines(sdpText []byte, prefix string) []string {
	var out []string
	for _, line := range strings.Split(string(sdpText), "\r\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes; for counters
// that have no channel to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// The first exchange either way, as the call makes it: an offer from one
// leg gives the other leg's offer; that leg's answer gives the first leg's.
func (s *Session) WebOffer(offer []byte) ([]byte, error) {
	step, err := s.Offer(LegWeb, offer)
	return step.Offer, err
}

func (s *Session) CoreAnswer(answer []byte) ([]byte, error) {
	step, err := s.Answer(LegCore, answer)
	return step.Answer, err
}

func (s *Session) CoreOffer(offer []byte) ([]byte, error) {
	step, err := s.Offer(LegCore, offer)
	return step.Offer, err
}

func (s *Session) WebAnswer(answer []byte) ([]byte, error) {
	step, err := s.Answer(LegWeb, answer)
	return step.Answer, err
}

// bareRTP is an RTP header alone, with the fields the packet path reads.
func bareRTP(ssrc uint32, seq uint16, ts uint32) []byte {
	p := make([]byte, rtpHeaderLen)
	p[0] = 0x80
	p[2], p[3] = byte(seq>>8), byte(seq)
	p[4], p[5], p[6], p[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	p[8], p[9], p[10], p[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
	return p
}
