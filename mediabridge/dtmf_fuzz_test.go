package mediabridge

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// FuzzParseDTMFInfo: any body parses to a digit within the bounds, whose
// body parses back to it, or to one of the two errors.
func FuzzParseDTMFInfo(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{DTMFRelayType, "Signal=5\r\nDuration=160\r\n"},
		{DTMFRelayType, "signal= #\nduration=99999\n"},
		{"Application/DTMF-Relay;x=y", "Signal=16\r\nDuration=0\r\n"},
		{DTMFRelayType, "Duration=100\r\nSignal=A\r\nSignal=B"},
		{DTMFRelayType, "Signal=\r\n=\r\n\n"},
		{"application/dtmf", "*\r\n"},
		{"application/dtmf", "12"},
		{"text/plain", "Signal=1"},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		d, err := ParseDTMFInfo(contentType, body)
		if err != nil {
			if !errors.Is(err, ErrBadDTMF) && !errors.Is(err, ErrNotDTMF) {
				t.Fatalf("unexpected error %v", err)
			}
			// 32 bytes of peer text, each quoted as up to 4 ("\x14").
			if len(err.Error()) > 200 {
				t.Fatalf("error quotes too much: %d bytes", len(err.Error()))
			}
			return
		}
		if d.Event > maxDTMFEvent || d.Duration < minDTMFDuration || d.Duration > maxDTMFDuration {
			t.Fatalf("out of bounds: %+v", d)
		}
		back, err := ParseDTMFInfo(DTMFRelayType, d.InfoBody())
		if err != nil || back.Event != d.Event || back.Duration != d.Duration.Truncate(time.Millisecond) {
			t.Fatalf("%+v: body %q parses to %+v, %v", d, d.InfoBody(), back, err)
		}
	})
}

// fuzzPacketLen is one packet of FuzzRFC4733Receiver's input: payload
// length (mod 5), 4 payload bytes, timestamp, sequence number.
const fuzzPacketLen = 1 + 4 + 4 + 2

func fuzzPackets(pkts []rx) []byte {
	out := []byte{0}
	for _, p := range pkts {
		out = append(out, 4)
		out = append(out, p.payload()...)
		out = binary.BigEndian.AppendUint32(out, p.ts)
		out = binary.BigEndian.AppendUint16(out, p.seq)
	}
	return out
}

// FuzzRFC4733Receiver: arbitrary packet sequences never panic, and no
// event timestamp is reported twice while the receiver remembers it
// (dtmfHistory events): retransmissions, updates and reordering add no
// digits.
func FuzzRFC4733Receiver(f *testing.F) {
	f.Add(fuzzPackets(press(1000, 1, 5, 4)))
	f.Add(fuzzPackets(cat(press(1000, 1, 5, 4)[2:], press(3000, 20, 5, 4))))
	f.Add(fuzzPackets(cat(press(3000, 20, 7, 4), press(1000, 40, 5, 4), press(3000, 60, 7, 2))))
	f.Add(fuzzPackets([]rx{
		{0, 1, 9, false, 0xFFFF}, {0xFFFF, 2, 9, false, 160}, {0, 3, 9, true, 0xFFFF}, {0xFFFF, 4, 9, true, 320},
	}))
	f.Add(fuzzPackets([]rx{{0, 1, 1, false, 160}, {1 << 31, 2, 2, true, 160}, {0, 3, 1, true, 320}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		clock := uint32(8000)
		if data[0]&1 == 1 {
			clock = 48000
		}
		data = data[1:]
		r := newDTMFReceiver(clock)
		remembers := 0
		lastReport := map[uint32]int{} // timestamp -> remembers when reported
		for ; len(data) >= fuzzPacketLen; data = data[fuzzPacketLen:] {
			payload := data[1 : 1+int(data[0])%5]
			ts := binary.BigEndian.Uint32(data[5:])
			seq := binary.BigEndian.Uint16(data[9:])
			prevTS, prevN := r.segTS, r.seenN
			rep := r.receive(payload, ts, seq)
			if r.seenN != prevN {
				remembers++
			}
			// Whose digits: a superseded event's (prevTS), then or else
			// the one this packet ended (ts).
			var owners []uint32
			switch {
			case rep.n == 2:
				owners = []uint32{prevTS, ts}
			case rep.n == 1 && r.reported:
				owners = []uint32{ts}
			case rep.n == 1:
				owners = []uint32{prevTS}
			}
			for i, owner := range owners {
				d := rep.digits[i]
				if d.Event > maxDTMFEvent {
					t.Fatalf("reported event %d", d.Event)
				}
				if at, ok := lastReport[owner]; ok && remembers-at < dtmfHistory {
					t.Fatalf("timestamp %d reported again after %d events", owner, remembers-at)
				}
				lastReport[owner] = remembers
			}
		}
		r.expire(0)
	})
}
