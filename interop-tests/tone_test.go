//go:build interop

package interop

import (
	"bytes"
	"math"
	"testing"
	"time"
)

// toneULaw is a sine tone as raw G.711 u-law at 8 kHz: what SIPp's
// rtp_stream plays as PCMU (payload only, 160 bytes per 20 ms packet).
func toneULaw(hz float64, d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	out := make([]byte, n)
	for i := range out {
		out[i] = linearToULaw(int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/8000)))
	}
	return out
}

// dtmfULaw is keys pressed as Q.23 tones in G.711 u-law: 300 ms of
// silence, then per key 120 ms of its two tones and 200 ms of silence.
func dtmfULaw(keys string) []byte {
	freqs := map[rune][2]float64{'1': {697, 1209}, '3': {697, 1477}, '5': {770, 1336}, '#': {941, 1477}, '*': {941, 1209}}
	silence := func(ms int) []byte { return bytes.Repeat([]byte{0xff}, ms*8) }
	out := silence(300)
	for _, k := range keys {
		f := freqs[k]
		for i := range 120 * 8 {
			x := 7000*math.Sin(2*math.Pi*f[0]*float64(i)/8000) + 7000*math.Sin(2*math.Pi*f[1]*float64(i)/8000)
			out = append(out, linearToULaw(int16(x)))
		}
		out = append(out, silence(200)...)
	}
	return out
}

// linearToULaw encodes one 16-bit sample (ITU-T G.711 u-law, bias 0x84).
func linearToULaw(sample int16) byte {
	const bias, clip = 0x84, 32635
	s := int(sample)
	sign := 0
	if s < 0 {
		sign, s = 0x80, -s
	}
	if s > clip {
		s = clip
	}
	s += bias
	exponent := 7
	for mask := 0x4000; exponent > 0 && s&mask == 0; mask >>= 1 {
		exponent--
	}
	mantissa := (s >> (exponent + 3)) & 0x0f
	return ^byte(sign | exponent<<4 | mantissa)
}

func TestLinearToULaw(t *testing.T) {
	tests := []struct {
		name   string
		sample int16
		want   byte
	}{
		{"zero", 0, 0xff},
		{"small positive", 100, 0xf2},
		{"small negative", -100, 0x72},
		{"full scale positive", 32767, 0x80},
		{"full scale negative", -32768, 0x00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := linearToULaw(tc.sample); got != tc.want {
				t.Errorf("linearToULaw(%d) = %#x, want %#x", tc.sample, got, tc.want)
			}
		})
	}
}

// ulawToLinear decodes one G.711 u-law byte.
func ulawToLinear(u byte) float64 {
	u = ^u
	exp := int(u>>4) & 7
	v := (int(u&0x0f)<<3 + 0x84) << exp
	v -= 0x84
	if u&0x80 != 0 {
		return float64(-v)
	}
	return float64(v)
}
