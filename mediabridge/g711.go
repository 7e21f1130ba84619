package mediabridge

// G.711 companding between 16-bit linear PCM and PCMU (µ-law) or PCMA
// (A-law), for tones written into or read out of G.711 audio. The segment
// arithmetic is that of ITU-T G.711 (and the reference g711.c), on the
// top 14 (µ-law) or 13 (A-law) bits of the sample.

const (
	ulawBias = 0x84 // added before the segment search (G.711 µ-law)
	ulawClip = 8159 // largest 14-bit magnitude
)

// ulawSegEnd are the upper bounds of µ-law's eight segments (14 bits,
// biased).
var ulawSegEnd = [8]int32{0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff}

// ulawEncode compands one sample to µ-law.
func ulawEncode(s int16) byte {
	x := int32(s) >> 2 // to 14 bits first, as g711.c rounds
	mask := byte(0xff) // sent inverted (G.711 §3)
	if x < 0 {
		x, mask = -x, 0x7f
	}
	x = min(x, ulawClip) + ulawBias>>2
	seg := byte(0)
	for seg < 8 && x > ulawSegEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	return (seg<<4 | byte(x>>(seg+1))&0x0f) ^ mask
}

// ulawDecode expands one µ-law byte.
func ulawDecode(u byte) int16 {
	u = ^u
	exp := (u >> 4) & 0x07
	x := (int32(u&0x0f)<<3+ulawBias)<<exp - ulawBias
	if u&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}

// alawSegEnd are the upper bounds of A-law's eight segments (13 bits).
var alawSegEnd = [8]int32{0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff}

// alawEncode compands one sample to A-law.
func alawEncode(s int16) byte {
	x := int32(s) >> 3
	mask := byte(0xd5) // sign bit set, even bits inverted (G.711 §2)
	if x < 0 {
		mask = 0x55
		x = -x - 1
	}
	seg := byte(0)
	for seg < 8 && x > alawSegEnd[seg] {
		seg++
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	a := seg << 4
	if seg < 2 {
		a |= byte(x>>1) & 0x0f
	} else {
		a |= byte(x>>seg) & 0x0f
	}
	return a ^ mask
}

// alawDecode expands one A-law byte.
func alawDecode(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0f) << 4
	switch seg := (a >> 4) & 0x07; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
