package mediabridge

import (
	"os"
	"path/filepath"
	"testing"

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
