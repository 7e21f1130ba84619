package mediabridge

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestDTMFFreqs(t *testing.T) {
	tests := []struct {
		event  uint8
		lo, hi float64
		ok     bool
	}{
		{1, 697, 1209, true}, {2, 697, 1336, true}, {3, 697, 1477, true}, {12, 697, 1633, true},
		{4, 770, 1209, true}, {5, 770, 1336, true}, {6, 770, 1477, true}, {13, 770, 1633, true},
		{7, 852, 1209, true}, {8, 852, 1336, true}, {9, 852, 1477, true}, {14, 852, 1633, true},
		{10, 941, 1209, true}, {0, 941, 1336, true}, {11, 941, 1477, true}, {15, 941, 1633, true},
		{dtmfFlash, 0, 0, false}, {200, 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := dtmfFreqs(tt.event)
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("event %d: %v %v %v, want %v %v %v", tt.event, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
}

func TestDTMFToneGen(t *testing.T) {
	if _, ok := newDTMFToneGen(DTMFDigit{Event: dtmfFlash}); ok {
		t.Fatal("a tone for hook flash")
	}
	g, ok := newDTMFToneGen(DTMFDigit{Event: 5, Duration: 50 * time.Millisecond})
	if !ok {
		t.Fatal("no generator")
	}
	buf := make([]int16, 3*toneFrame)
	if n := g.read(buf); n != 400 {
		t.Fatalf("wrote %d samples, want 400 (50 ms)", n)
	}
	if n := g.read(buf); n != 0 {
		t.Fatalf("wrote %d samples after the end", n)
	}
	// The recurrence matches the two sines sample for sample.
	g, _ = newDTMFToneGen(DTMFDigit{Event: 5, Duration: 2 * time.Second})
	var peak float64
	for i := 0; ; i += toneFrame {
		n := g.read(buf[:toneFrame])
		if n == 0 {
			break
		}
		for j, s := range buf[:n] {
			x := float64(i + j)
			want := dtmfToneAmplitude * (math.Sin(2*math.Pi*770*x/toneRate) + math.Sin(2*math.Pi*1336*x/toneRate))
			if math.Abs(float64(s)-want) > 2 {
				t.Fatalf("sample %d = %d, want %.1f", i+j, s, want)
			}
			peak = max(peak, math.Abs(float64(s)))
		}
	}
	if peak > 2*dtmfToneAmplitude+1 || peak < 1.9*dtmfToneAmplitude {
		t.Errorf("peak %v", peak)
	}
}

// signal builds 8 kHz test audio: a tone from sample at for dur, on top of
// sines and white noise.
type signal struct {
	tones []placedTone
	sines []sine
	noise float64 // standard deviation
	pcm   func(int16) int16
}

type placedTone struct {
	digit DTMFDigit
	at    int
	cut   int // when set, the samples kept: shorter than the generator's 40 ms
}

type sine struct{ hz, amp float64 }

func (s signal) render(samples int) []int16 {
	out := make([]float64, samples)
	for _, pt := range s.tones {
		g, ok := newDTMFToneGen(pt.digit)
		if !ok {
			panic("no tone")
		}
		buf := make([]int16, samples)
		n := g.read(buf)
		if pt.cut > 0 {
			n = min(n, pt.cut)
		}
		for i := range n {
			if pt.at+i < samples {
				out[pt.at+i] += float64(buf[i])
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range out {
		for _, sn := range s.sines {
			out[i] += sn.amp * math.Sin(2*math.Pi*sn.hz*float64(i)/toneRate+sn.hz)
		}
		out[i] += rng.NormFloat64() * s.noise
	}
	pcm := make([]int16, samples)
	for i, v := range out {
		pcm[i] = int16(max(-32768, min(32767, math.Round(v))))
		if s.pcm != nil {
			pcm[i] = s.pcm(pcm[i])
		}
	}
	return pcm
}

// detectAll feeds pcm in 20 ms frames and then a second of silence.
func detectAll(pcm []int16) []DTMFDigit {
	pcm = append(pcm, make([]int16, toneRate)...)
	det := newDTMFToneDetector()
	var got []DTMFDigit
	for i := 0; i+toneFrame <= len(pcm); i += toneFrame {
		if d, ok := det.detect(pcm[i : i+toneFrame]); ok {
			got = append(got, d)
		}
	}
	return got
}

func events(ds []DTMFDigit) []uint8 {
	out := make([]uint8, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Event)
	}
	return out
}

func TestDTMFToneDetector(t *testing.T) {
	ms := time.Millisecond
	tone := func(ev uint8, d time.Duration, at int) placedTone { return placedTone{DTMFDigit{ev, d}, at, 0} }
	speech := []sine{{180, 3000}, {360, 2500}, {540, 2000}, {1050, 1500}, {2200, 1200}, {3100, 800}}
	tests := []struct {
		name string
		sig  signal
		want []uint8
		dur  []time.Duration // when set, the reported durations
	}{
		{"silence", signal{}, nil, nil},
		{"aligned 100 ms", signal{tones: []placedTone{tone(5, 100*ms, 0)}}, []uint8{5}, []time.Duration{100 * ms}},
		{"aligned 40 ms", signal{tones: []placedTone{tone(9, 40*ms, 320)}}, []uint8{9}, []time.Duration{40 * ms}},
		{"40 ms split 10/20/10", signal{tones: []placedTone{tone(1, 40*ms, 80)}}, []uint8{1}, nil},
		{"40 ms split 5/20/15", signal{tones: []placedTone{tone(15, 40*ms, 120)}}, []uint8{15}, nil},
		{"60 ms split across frames", signal{tones: []placedTone{tone(0, 60*ms, 1000)}}, []uint8{0}, nil},
		{"20 ms too short", signal{tones: []placedTone{{DTMFDigit{2, 40 * ms}, 0, 160}}}, nil, nil},
		// Q.24 leaves 20-40 ms to the detector: one full frame and a
		// quarter is not a tone, one and a half (30 ms, 10/20) is.
		{"25 ms split 5/20 too short", signal{tones: []placedTone{{DTMFDigit{2, 40 * ms}, 120, 200}}}, nil, nil},
		{"sequence with 40 ms gaps", signal{tones: []placedTone{
			tone(1, 60*ms, 0), tone(2, 60*ms, 800), tone(2, 60*ms, 1600), tone(11, 60*ms, 2450),
		}}, []uint8{1, 2, 2, 11}, nil},
		{"long tone reported once at 2 s", signal{tones: []placedTone{
			tone(3, 2*time.Second, 0), tone(3, 2*time.Second, 16000),
		}}, []uint8{3}, []time.Duration{2 * time.Second}},
		{"tone in noise", signal{tones: []placedTone{tone(6, 100*ms, 555)}, noise: 1200}, []uint8{6}, nil},
		{"white noise alone", signal{noise: 4000}, nil, nil},
		{"speech-like sines", signal{sines: speech}, nil, nil},
		{"tone over speech", signal{tones: []placedTone{tone(8, 100*ms, 400)}, sines: []sine{{180, 1500}, {360, 1000}}}, []uint8{8}, nil},
		{"single row tone", signal{sines: []sine{{697, 8000}}}, nil, nil},
		{"single column tone", signal{sines: []sine{{1336, 8000}}}, nil, nil},
		{"too much twist", signal{sines: []sine{{770, 8000}, {1336, 1500}}}, nil, nil},
		{"two tones of one group", signal{sines: []sine{{697, 6000}, {852, 6000}, {1209, 6000}}}, nil, nil},
		{"off-frequency pair", signal{sines: []sine{{650, 7000}, {1290, 7000}}}, nil, nil},
		{"too quiet", signal{sines: []sine{{770, 150}, {1336, 150}}}, nil, nil},
		{"every digit through µ-law", signal{tones: everyDigit(), pcm: func(s int16) int16 { return ulawDecode(ulawEncode(s)) }},
			[]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, nil},
		{"every digit through A-law with noise", signal{tones: everyDigit(), noise: 600, pcm: func(s int16) int16 { return alawDecode(alawEncode(s)) }},
			[]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := detectAll(tt.sig.render(5 * toneRate))
			if fmt.Sprint(events(got)) != fmt.Sprint(events(digitsOf(tt.want))) {
				t.Fatalf("detected %v, want %v", got, tt.want)
			}
			for i, d := range tt.dur {
				if got[i].Duration != d {
					t.Errorf("digit %d lasted %v, want %v", i, got[i].Duration, d)
				}
			}
		})
	}
}

func everyDigit() []placedTone {
	var out []placedTone
	for ev := range uint8(16) {
		out = append(out, placedTone{DTMFDigit{ev, 100 * time.Millisecond}, int(ev)*2000 + 37, 0})
	}
	return out
}

func digitsOf(evs []uint8) []DTMFDigit {
	out := make([]DTMFDigit, 0, len(evs))
	for _, ev := range evs {
		out = append(out, DTMFDigit{Event: ev})
	}
	return out
}

// TestDTMFToneRoundTrip: every digit, generated at every duration and
// offset into a frame, is heard once, lasting about as long.
func TestDTMFToneRoundTrip(t *testing.T) {
	for ev := range uint8(16) {
		for _, d := range []time.Duration{40 * time.Millisecond, 100 * time.Millisecond, 730 * time.Millisecond} {
			for _, at := range []int{0, 17, 80, 159} {
				sig := signal{tones: []placedTone{{DTMFDigit{ev, d}, at, 0}}}
				got := detectAll(sig.render(toneRate))
				if len(got) != 1 || got[0].Event != ev {
					t.Errorf("%d for %v at %d: detected %v", ev, d, at, got)
					continue
				}
				if diff := got[0].Duration - d; diff < -20*time.Millisecond || diff > 40*time.Millisecond {
					t.Errorf("%d for %v at %d: lasted %v", ev, d, at, got[0].Duration)
				}
			}
		}
	}
}

func TestDTMFToneDetectorDoesNotAllocate(t *testing.T) {
	pcm := signal{tones: []placedTone{{DTMFDigit{4, 60 * time.Millisecond}, 0, 0}}}.render(toneRate)
	det := newDTMFToneDetector()
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		det.detect(pcm[i : i+toneFrame])
		i = (i + toneFrame) % (len(pcm) - toneFrame)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

func BenchmarkDTMFToneDetect(b *testing.B) {
	pcm := signal{tones: everyDigit(), noise: 300}.render(5 * toneRate)
	det := newDTMFToneDetector()
	b.ReportAllocs()
	b.SetBytes(toneFrame * 2)
	for i := 0; b.Loop(); i = (i + toneFrame) % (len(pcm) - toneFrame) {
		det.detect(pcm[i : i+toneFrame])
	}
}
