package democore

import (
	"encoding/binary"
	"testing"
)

// TestEchoReadsTelephoneEvents: a key press is one digit however many
// updates and end packets carry it.
func TestEchoReadsTelephoneEvents(t *testing.T) {
	pkt := func(ts uint32, event byte, end bool) []byte {
		p := make([]byte, rtpHeaderLen+4)
		p[0], p[1] = 0x80, 101
		binary.BigEndian.PutUint32(p[4:], ts)
		p[rtpHeaderLen] = event
		if end {
			p[rtpHeaderLen+1] = 0x80
		}
		return p
	}
	var got string
	var last uint32
	var ended bool
	for _, p := range [][]byte{
		pkt(160, 5, false), pkt(160, 5, false), pkt(160, 5, true), pkt(160, 5, true), pkt(160, 5, true),
		pkt(1760, 11, false), pkt(1760, 11, true), pkt(1760, 11, true),
		pkt(3360, 99, true), // not a key
		{0x80, 101, 0},      // too short
	} {
		got += digit(p, &last, &ended)
	}
	if got != "5#" {
		t.Fatalf("digits %q, want 5#", got)
	}
}
