// Package emodel rates a voice path with the ITU-T G.107 E-model: the
// transmission rating R from the codec, the packet loss and the one-way
// delay, and the MOS that R predicts (G.107 Annex B).
//
// It uses the model's default values for everything a gateway cannot see
// (loudness ratings, room noise, echo), so R is 93.2 for a perfect G.711
// path; what moves it is the equipment impairment of the codec under loss
// (Ie,eff, G.107 §7.5 with G.113's Ie and Bpl) and the delay impairment
// Idd (§7.4). It is the narrowband model: wideband codecs are rated as
// G.711 with packet loss concealment, which they are at least as good as.
package emodel

import (
	"math"
	"strings"
)

// Codec is a codec's impairment values (ITU-T G.113 Appendix I).
type Codec struct {
	Ie  float64 // equipment impairment without loss
	Bpl float64 // packet-loss robustness
}

// codecs are G.113's values; G.711 with its Appendix I concealment.
var codecs = map[string]Codec{
	"pcmu": {Ie: 0, Bpl: 25.1},
	"pcma": {Ie: 0, Bpl: 25.1},
	"g729": {Ie: 11, Bpl: 19},
	"gsm":  {Ie: 20, Bpl: 10},
	"ilbc": {Ie: 10, Bpl: 32},
}

// defaultCodec rates codecs G.113 has no values for (opus, G.722, AMR-WB)
// as G.711 with concealment.
var defaultCodec = Codec{Ie: 0, Bpl: 25.1}

// CodecNamed is the values for an SDP encoding name ("PCMU", "opus/48000").
func CodecNamed(name string) Codec {
	name, _, _ = strings.Cut(strings.ToLower(name), "/")
	if c, ok := codecs[name]; ok {
		return c
	}
	return defaultCodec
}

// r0MinusIs is R with every default (G.107 Table 3): 93.2.
const r0MinusIs = 93.2

// R is the transmission rating for codec c, lossPercent of the packets lost
// at random (BurstR 1) and a one-way mouth-to-ear delay of delayMs.
func R(c Codec, lossPercent, delayMs float64) float64 {
	ppl := math.Max(0, math.Min(100, lossPercent))
	ieEff := c.Ie + (95-c.Ie)*ppl/(ppl+c.Bpl)
	return r0MinusIs - Idd(delayMs) - ieEff
}

// Idd is G.107's impairment by absolute delay Ta (ms): none up to 100 ms.
func Idd(ta float64) float64 {
	if ta <= 100 {
		return 0
	}
	x := math.Log2(ta / 100)
	return 25 * (math.Pow(1+math.Pow(x, 6), 1.0/6) - 3*math.Pow(1+math.Pow(x/3, 6), 1.0/6) + 2)
}

// MOS is the conversational quality R predicts (G.107 Annex B, B.4), from
// 1 to 4.5.
func MOS(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}
