package mediabridge

import (
	"fmt"
	"testing"
	"time"
)

// rx is one received telephone-event packet.
type rx struct {
	ts    uint32
	seq   uint16
	event uint8
	end   bool
	dur   uint16
}

func (p rx) payload() []byte {
	b := dtmfEvent{event: p.event, end: p.end, volume: dtmfVolume, duration: p.dur}.encode()
	return b[:]
}

// press is the packets of one 8 kHz event of n updates and three ends,
// numbered from seq.
func press(ts uint32, seq uint16, event uint8, n int) []rx {
	var out []rx
	for k := 1; k <= n; k++ {
		out = append(out, rx{ts, seq, event, false, uint16(k * 160)})
		seq++
	}
	for range dtmfEndPackets {
		out = append(out, rx{ts, seq, event, true, uint16((n + 1) * 160)})
		seq++
	}
	return out
}

func cat(parts ...[]rx) []rx {
	var out []rx
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDTMFReceiver(t *testing.T) {
	ms := time.Millisecond
	five := press(1000, 10, 5, 4)      // ends at 800 = 100 ms
	seven := press(3000, 20, 7, 4)     // a later press
	fiveAgain := press(3000, 20, 5, 4) // the same key again
	tests := []struct {
		name string
		pkts []rx
		want []DTMFDigit
	}{
		{"one press", five, []DTMFDigit{{5, 100 * ms}}},
		{"two presses", cat(five, seven), []DTMFDigit{{5, 100 * ms}, {7, 100 * ms}}},
		{"same key twice", cat(five, fiveAgain), []DTMFDigit{{5, 100 * ms}, {5, 100 * ms}}},
		{"first packets lost", five[2:], []DTMFDigit{{5, 100 * ms}}},
		{"only an end packet", five[len(five)-1:], []DTMFDigit{{5, 100 * ms}}},
		{"ends duplicated", cat(five, five[4:], five[4:]), []DTMFDigit{{5, 100 * ms}}},
		{"update after end", cat(five[:1], five[4:5], five[1:4], five[5:]), []DTMFDigit{{5, 100 * ms}}},
		{
			"all ends lost, next press reports it",
			cat(five[:4], seven),
			[]DTMFDigit{{5, 80 * ms}, {7, 100 * ms}},
		},
		{
			"all ends and updates lost, next is only an end",
			cat(five[:2], seven[len(seven)-1:]),
			[]DTMFDigit{{5, 40 * ms}, {7, 100 * ms}},
		},
		{
			"late end of the previous press",
			cat(five[:5], seven[:2], five[5:], seven[2:]),
			[]DTMFDigit{{5, 100 * ms}, {7, 100 * ms}},
		},
		{
			"whole older press after a newer one",
			cat(seven, five),
			[]DTMFDigit{{7, 100 * ms}},
		},
		{
			"stream restarted: older timestamp, newer sequence",
			cat(seven, press(1000, 40, 5, 4)),
			[]DTMFDigit{{7, 100 * ms}, {5, 100 * ms}},
		},
		{
			"timestamp wraps",
			cat(press(0xFFFFFF00, 1, 1, 4), press(0x200, 9, 2, 4)),
			[]DTMFDigit{{1, 100 * ms}, {2, 100 * ms}},
		},
		{
			"long event in two segments",
			[]rx{
				{0, 1, 9, false, 160}, {0, 2, 9, false, 0xFFFF},
				{0xFFFF, 3, 9, false, 160}, {0, 2, 9, false, 0xFF00}, // a late one of the first segment
				{0xFFFF, 4, 9, true, 1600}, {0xFFFF, 5, 9, true, 1600},
			},
			[]DTMFDigit{{9, dtmfTicksDuration(0xFFFF+1600, 8000)}},
		},
		{
			"long event, segment end lost, sender's segment shorter",
			[]rx{{0, 1, 9, false, 40000}, {65440, 3, 9, false, 160}, {65440, 4, 9, true, 320}},
			[]DTMFDigit{{9, dtmfTicksDuration(65440+320, 8000)}},
		},
		{
			"same event just after a lost end is a new press",
			[]rx{{0, 1, 9, false, 800}, {1120, 3, 9, false, 160}, {1120, 4, 9, true, 320}},
			[]DTMFDigit{{9, 100 * ms}, {9, 40 * ms}},
		},
		{
			"not DTMF and short payloads ignored",
			[]rx{{0, 1, 32, true, 800}, {0, 2, 200, false, 160}},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newDTMFReceiver(8000)
			var got []DTMFDigit
			for _, p := range tt.pkts {
				rep := r.receive(p.payload(), p.ts, p.seq)
				got = append(got, rep.digits[:rep.n]...)
			}
			if rep := r.receive([]byte{1, 2}, 0, 0); rep.n != 0 {
				t.Errorf("short payload reported %v", rep)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("reported %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDTMFReceiverExpire(t *testing.T) {
	r := newDTMFReceiver(8000)
	if _, ok := r.expire(0); ok {
		t.Fatal("expired with nothing received")
	}
	for _, p := range press(1000, 1, 3, 4)[:4] { // ends lost
		if rep := r.receive(p.payload(), p.ts, p.seq); rep.n != 0 {
			t.Fatalf("reported %v before the end", rep)
		}
	}
	// The event reached 1000+640; expiry is 200 ms = 1600 units later.
	if _, ok := r.expire(1000 + 640 + 1599); ok {
		t.Fatal("expired too soon")
	}
	d, ok := r.expire(1000 + 640 + 1600)
	if !ok || d != (DTMFDigit{3, 80 * time.Millisecond}) {
		t.Fatalf("expire = %v, %v", d, ok)
	}
	if _, ok := r.expire(90000); ok {
		t.Fatal("expired twice")
	}
	// A late end of the expired event adds nothing.
	if rep := r.receive(rx{1000, 9, 3, true, 800}.payload(), 1000, 9); rep.n != 0 {
		t.Fatalf("late end reported %v", rep)
	}
	r.reset()
	if rep := r.receive(rx{1000, 1, 3, true, 800}.payload(), 1000, 1); rep.n != 1 {
		t.Fatalf("after reset the same event is new: got %v", rep)
	}
}

// TestDTMFReceiverLossy sends every digit at both clocks through a channel
// that loses the first two packets and two of the three ends, and swaps
// neighbours: still one report per press.
func TestDTMFReceiverLossy(t *testing.T) {
	for _, clock := range []uint32{8000, 48000} {
		t.Run(fmt.Sprint(clock), func(t *testing.T) {
			s := newDTMFSender(clock, 20*time.Millisecond)
			var want []uint8
			for ev := range uint8(maxDTMFEvent + 1) {
				s.push(DTMFDigit{Event: ev, Duration: 200 * time.Millisecond})
				want = append(want, ev)
			}
			var pkts []rx
			var seq uint16
			for i := range 1000 {
				p, ok := s.next(uint32(i) * s.interval)
				if !ok {
					continue
				}
				seq++
				e, _ := decodeDTMFEvent(p.payload[:])
				pkts = append(pkts, rx{p.timestamp, seq, e.event, e.end, e.duration})
			}
			var lossy []rx
			for i, p := range pkts {
				first := i == 0 || pkts[i-1].ts != p.ts
				second := i > 0 && pkts[i-1].ts == p.ts && (i < 2 || pkts[i-2].ts != p.ts)
				lastEnd := i+1 == len(pkts) || pkts[i+1].ts != p.ts
				if first || second || (p.end && !lastEnd) {
					continue
				}
				lossy = append(lossy, p)
			}
			for i := 0; i+1 < len(lossy); i += 3 {
				lossy[i], lossy[i+1] = lossy[i+1], lossy[i]
			}
			r := newDTMFReceiver(clock)
			var got []uint8
			for _, p := range lossy {
				rep := r.receive(p.payload(), p.ts, p.seq)
				for _, d := range rep.digits[:rep.n] {
					got = append(got, d.Event)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("reported %v, want %v", got, want)
			}
		})
	}
}
