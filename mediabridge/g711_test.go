package mediabridge

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func TestG711(t *testing.T) {
	tests := []struct {
		name   string
		sample int16
		ulaw   byte
		alaw   byte
	}{
		{"zero", 0, 0xff, 0xd5},
		{"small positive", 8, 0xfe, 0xd5},
		{"small negative", -8, 0x7e, 0x55},
		{"mid positive", 1000, 0xce, 0xfa},
		{"mid negative", -1000, 0x4e, 0x7a},
		{"full scale", 32767, 0x80, 0xaa},
		{"most negative", -32768, 0x00, 0x2a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ulawEncode(tt.sample); got != tt.ulaw {
				t.Errorf("ulawEncode(%d) = %#x, want %#x", tt.sample, got, tt.ulaw)
			}
			if got := alawEncode(tt.sample); got != tt.alaw {
				t.Errorf("alawEncode(%d) = %#x, want %#x", tt.sample, got, tt.alaw)
			}
		})
	}
	// Reference values of the decoders, as CPython's audioop gives them.
	decodes := []struct {
		code       byte
		ulaw, alaw int16
	}{
		{0xff, 0, 848}, {0x7f, 0, -848}, {0x80, 32124, 5504}, {0x00, -32124, -5504},
		{0xd5, 716, 8}, {0x55, -716, -8}, {0xaa, 5372, 32256}, {0x2a, -5372, -32256},
	}
	for _, d := range decodes {
		if got := ulawDecode(d.code); got != d.ulaw {
			t.Errorf("ulawDecode(%#x) = %d, want %d", d.code, got, d.ulaw)
		}
		if got := alawDecode(d.code); got != d.alaw {
			t.Errorf("alawDecode(%#x) = %d, want %d", d.code, got, d.alaw)
		}
	}
}

// TestG711RoundTrip: every code survives decode and encode (µ-law's
// negative zero becomes positive zero), and companding error stays within
// half a step of the segment.
func TestG711RoundTrip(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		if got := ulawEncode(ulawDecode(b)); got != b && b != 0x7f {
			t.Errorf("ulaw %#x -> %d -> %#x", b, ulawDecode(b), got)
		}
		if got := alawEncode(alawDecode(b)); got != b {
			t.Errorf("alaw %#x -> %d -> %#x", b, alawDecode(b), got)
		}
	}
	for s := -32768; s <= 32767; s++ {
		x := int16(s)
		step := max(abs32(int32(x))/16, 8) // a segment step is 1/16 of its range
		if d := abs32(int32(ulawDecode(ulawEncode(x))) - int32(x)); d > step+132 {
			t.Fatalf("ulaw %d: error %d", x, d)
		}
		if d := abs32(int32(alawDecode(alawEncode(x))) - int32(x)); d > step+16 {
			t.Fatalf("alaw %d: error %d", x, d)
		}
	}
}

func abs32(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestG711MatchesReference compares every sample and code with CPython's
// audioop (the reference g711.c), by the CRC-32 of its output:
// lin2ulaw/lin2alaw of -32768..32767 as little-endian int16, and
// ulaw2lin/alaw2lin of the codes 0..255.
func TestG711MatchesReference(t *testing.T) {
	u := make([]byte, 0, 65536)
	a := make([]byte, 0, 65536)
	for s := -32768; s <= 32767; s++ {
		u = append(u, ulawEncode(int16(s)))
		a = append(a, alawEncode(int16(s)))
	}
	var ud, ad []byte
	for c := range 256 {
		ud = binary.LittleEndian.AppendUint16(ud, uint16(ulawDecode(byte(c))))
		ad = binary.LittleEndian.AppendUint16(ad, uint16(alawDecode(byte(c))))
	}
	for _, tt := range []struct {
		name string
		data []byte
		want uint32
	}{
		{"lin2ulaw", u, 0x3b7c3a3e},
		{"lin2alaw", a, 0x9133796e},
		{"ulaw2lin", ud, 0x0c847a9f},
		{"alaw2lin", ad, 0x9d764657},
	} {
		if got := crc32.ChecksumIEEE(tt.data); got != tt.want {
			t.Errorf("%s: crc32 %#x, want %#x", tt.name, got, tt.want)
		}
	}
}
