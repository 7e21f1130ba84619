package emodel

import (
	"math"
	"testing"
)

func TestRating(t *testing.T) {
	for _, tc := range []struct {
		name          string
		codec         string
		loss, delay   float64
		wantR, wantMO float64
	}{
		// G.107's default connection: R 93.2, MOS 4.41.
		{"perfect G.711", "PCMU", 0, 0, 93.2, 4.41},
		{"G.711 under 100 ms of delay has no delay impairment", "PCMA/8000", 0, 100, 93.2, 4.41},
		// Ie,eff = 95*2/(2+25.1) = 7.01.
		{"G.711 at 2 % loss", "PCMU", 2, 40, 86.19, 4.24},
		// Ie,eff = 95*5/(5+25.1) = 15.78.
		{"G.711 at 5 % loss", "PCMU", 5, 40, 77.42, 3.92},
		// G.729: Ie 11, no loss.
		{"G.729", "G729", 0, 40, 82.2, 4.10},
		{"G.711 at 400 ms one way", "PCMU", 0, 400, 93.2 - Idd(400), MOS(93.2 - Idd(400))},
		{"opus is rated as G.711 with concealment", "opus/48000", 5, 40, 77.42, 3.92},
		{"everything lost", "PCMU", 100, 40, 93.2 - 95*100/125.1, MOS(93.2 - 95*100/125.1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := R(CodecNamed(tc.codec), tc.loss, tc.delay)
			if math.Abs(r-tc.wantR) > 0.01 {
				t.Errorf("R = %.3f, want %.2f", r, tc.wantR)
			}
			if m := MOS(r); math.Abs(m-tc.wantMO) > 0.01 {
				t.Errorf("MOS(%.2f) = %.3f, want %.2f", r, m, tc.wantMO)
			}
		})
	}
}

func TestIddGrowsWithDelay(t *testing.T) {
	prev := 0.0
	for _, ta := range []float64{150, 200, 300, 400, 600, 1000} {
		d := Idd(ta)
		if d <= prev {
			t.Fatalf("Idd(%v) = %v, not above Idd at less delay (%v)", ta, d, prev)
		}
		prev = d
	}
	// 400 ms one way is two doublings past 100 ms: X = 2.
	if d := Idd(400); math.Abs(d-24.07) > 0.01 {
		t.Errorf("Idd(400) = %.3f, want 24.07", d)
	}
}

func TestMOSBounds(t *testing.T) {
	for _, tc := range []struct{ r, want float64 }{{-5, 1}, {0, 1}, {100, 4.5}, {120, 4.5}, {50, 1 + 1.75 + 50*(-10)*50*7e-6}} {
		if got := MOS(tc.r); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("MOS(%v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}
