package mediabridge

import (
	"math"
	"time"
)

// In-band DTMF: the two-frequency tones of ITU-T Q.23 in 16-bit linear PCM
// at 8 kHz, the form they take inside G.711 audio.

const (
	toneRate = 8000
	// toneFrame is the frame the detector is tuned for: 20 ms gives 50 Hz
	// bins, fine enough for row tones 73 Hz apart.
	toneFrame = 160

	// dtmfToneAmplitude is the peak of each of the two sines: -10 dBm0
	// (dtmfVolume), 0 dBm0 being a sine of peak 22660 in G.711's scale
	// (G.711 §2: full scale is +3.17 dBm0).
	dtmfToneAmplitude = 7166

	// Detector thresholds, after Q.24's acceptance ranges.
	// toneMinPower is each tone's least power per sample: -36 dBm0, i.e.
	// a -30 dBm0 tone filling half a frame.
	toneMinPower = 359 * 359 / 2
	// toneMinShare is the least share of the frame's energy the two tones
	// hold: speech and noise spread their energy, a tone that fills half a
	// frame still holds half of it.
	toneMinShare = 0.4
	// tonePeakRatio: the tone must beat the others of its group by 6 dB.
	tonePeakRatio = 4.0
	// Twist, high group against low: up to 8 dB weaker (normal twist),
	// up to 4 dB stronger (reverse twist).
	toneNormalTwist  = 0.158
	toneReverseTwist = 2.51
)

// Q.23 frequencies, and the key at each row and column.
var (
	dtmfRowHz  = [4]float64{697, 770, 852, 941}
	dtmfColHz  = [4]float64{1209, 1336, 1477, 1633}
	dtmfKeypad = [4][4]uint8{
		{1, 2, 3, 12},
		{4, 5, 6, 13},
		{7, 8, 9, 14},
		{10, 0, 11, 15},
	}
	dtmfRowCoef = goertzelCoefs(dtmfRowHz)
	dtmfColCoef = goertzelCoefs(dtmfColHz)
)

// dtmfFreqs is the low and high frequency of a digit; hook flash and
// other events have no tone.
func dtmfFreqs(event uint8) (lo, hi float64, ok bool) {
	for r, row := range dtmfKeypad {
		for c, key := range row {
			if key == event {
				return dtmfRowHz[r], dtmfColHz[c], true
			}
		}
	}
	return 0, 0, false
}

// oscillator makes a sine by recurrence, y[n] = k·y[n-1] - y[n-2], with
// no trigonometry per sample.
type oscillator struct{ k, y1, y2 float64 }

func newOscillator(hz, amplitude float64) oscillator {
	w := 2 * math.Pi * hz / toneRate
	// y[-1] and y[-2] of amplitude·sin(w·n), so the first sample is 0.
	return oscillator{k: 2 * math.Cos(w), y1: amplitude * math.Sin(-w), y2: amplitude * math.Sin(-2*w)}
}

func (o *oscillator) next() float64 {
	y := o.k*o.y1 - o.y2
	o.y2, o.y1 = o.y1, y
	return y
}

// dtmfToneGen writes the tone of one digit, frame by frame.
type dtmfToneGen struct {
	lo, hi oscillator
	left   int // samples still to write
}

// newDTMFToneGen is the generator for d, lasting d.Duration clamped as an
// INFO's; ok is false for an event with no tone.
func newDTMFToneGen(d DTMFDigit) (dtmfToneGen, bool) {
	lo, hi, ok := dtmfFreqs(d.Event)
	if !ok {
		return dtmfToneGen{}, false
	}
	return dtmfToneGen{
		lo:   newOscillator(lo, dtmfToneAmplitude),
		hi:   newOscillator(hi, dtmfToneAmplitude),
		left: int(dtmfTicks(clampDTMFDuration(d.Duration), toneRate)),
	}, true
}

// read writes the next samples of the tone into dst and returns how many;
// fewer than len(dst) once the tone is over.
func (g *dtmfToneGen) read(dst []int16) int {
	n := min(len(dst), g.left)
	for i := range n {
		dst[i] = int16(math.Round(g.lo.next() + g.hi.next()))
	}
	g.left -= n
	return n
}

// noTone marks no digit heard.
const noTone = 0xFF

// dtmfToneDetector finds DTMF in 8 kHz PCM fed in 20 ms frames, with a
// Goertzel filter per Q.23 frequency. A digit is reported once per tone:
// when the tone stops (or at maxDTMFDuration, for a tone that does not),
// and only if it lasted minDTMFDuration. It never allocates.
type dtmfToneDetector struct {
	event    uint8 // heard in the last frames, or noTone
	samples  int   // for how long
	reported bool
}

func newDTMFToneDetector() *dtmfToneDetector {
	return &dtmfToneDetector{event: noTone}
}

// detect takes the next frame and returns a digit whose tone is over.
func (t *dtmfToneDetector) detect(frame []int16) (d DTMFDigit, ok bool) {
	ev := toneDigit(frame)
	if ev != noTone && ev == t.event {
		t.samples += len(frame)
		if !t.reported && t.duration() >= maxDTMFDuration {
			t.reported = true
			return DTMFDigit{Event: t.event, Duration: maxDTMFDuration}, true
		}
		return d, false
	}
	if t.event != noTone && !t.reported && t.duration() >= minDTMFDuration {
		d, ok = DTMFDigit{Event: t.event, Duration: t.duration()}, true
	}
	t.event, t.samples, t.reported = ev, len(frame), false
	return d, ok
}

func (t *dtmfToneDetector) duration() time.Duration {
	return dtmfTicksDuration(uint64(t.samples), toneRate)
}

// toneDigit is the digit one frame holds, or noTone.
func toneDigit(frame []int16) uint8 {
	if len(frame) == 0 {
		return noTone
	}
	var energy float64
	for _, s := range frame {
		energy += float64(s) * float64(s)
	}
	n := float64(len(frame))
	if energy < 2*toneMinPower*n {
		return noTone // too quiet for two tones at the least level
	}
	r, rowPower, ok := strongest(frame, &dtmfRowCoef)
	if !ok {
		return noTone
	}
	c, colPower, ok := strongest(frame, &dtmfColCoef)
	if !ok {
		return noTone
	}
	switch {
	case rowPower < toneMinPower*n || colPower < toneMinPower*n:
		return noTone
	case colPower < rowPower*toneNormalTwist || colPower > rowPower*toneReverseTwist:
		return noTone // one tone alone, or a mix no keypad sends
	case rowPower+colPower < toneMinShare*energy:
		return noTone // the rest of the frame is not silence: speech, noise, music
	}
	return dtmfKeypad[r][c]
}

// strongest finds the frequency of a group with the most power in frame,
// as the energy a sine there would have in the frame (2|X|²/N), and
// whether it stands out from the others by tonePeakRatio.
func strongest(frame []int16, coefs *[4]float64) (best int, power float64, ok bool) {
	var second float64
	for i, k := range coefs {
		p := goertzel(frame, k) * 2 / float64(len(frame))
		switch {
		case p > power:
			best, second, power = i, power, p
		case p > second:
			second = p
		}
	}
	return best, power, power >= second*tonePeakRatio
}

// goertzel is |X(f)|² of x at the frequency whose coefficient is k =
// 2cos(2πf/rate); f need not fall on a DFT bin.
func goertzel(x []int16, k float64) float64 {
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+k*s1-s2, s1
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

func goertzelCoefs(hz [4]float64) [4]float64 {
	var k [4]float64
	for i, f := range hz {
		k[i] = 2 * math.Cos(2*math.Pi*f/toneRate)
	}
	return k
}
