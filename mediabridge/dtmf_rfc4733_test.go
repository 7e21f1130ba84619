package mediabridge

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDTMFEventCodec(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want dtmfEvent
		err  error
	}{
		{"update", []byte{5, 10, 0x00, 0xa0}, dtmfEvent{event: 5, volume: 10, duration: 160}, nil},
		{"end", []byte{11, 0x80 | 10, 0x03, 0x20}, dtmfEvent{event: 11, end: true, volume: 10, duration: 800}, nil},
		{"max duration", []byte{0, 63, 0xff, 0xff}, dtmfEvent{event: 0, volume: 63, duration: 0xffff}, nil},
		{"R bit ignored", []byte{1, 0x40 | 7, 0, 1}, dtmfEvent{event: 1, volume: 7, duration: 1}, nil},
		{"second report unread", []byte{2, 0x80, 0, 8, 3, 0, 0, 9}, dtmfEvent{event: 2, end: true, duration: 8}, nil},
		{"short", []byte{1, 2, 3}, dtmfEvent{}, errShortDTMFEvent},
		{"empty", nil, dtmfEvent{}, errShortDTMFEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeDTMFEvent(tt.wire)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("decode = %+v, want %+v", got, tt.want)
			}
			if err != nil {
				return
			}
			enc := got.encode()
			want := [4]byte(tt.wire[:4])
			want[1] &^= 0x40 // R goes out as zero
			if enc != want {
				t.Errorf("encode = % x, want % x", enc, want)
			}
		})
	}
}

// sent is one packet as a test reads it.
type sent struct {
	ts     uint32
	marker bool
	event  uint8
	end    bool
	dur    uint16
}

func (s sent) String() string {
	return fmt.Sprintf("{ts %d m %v ev %d e %v dur %d}", s.ts, s.marker, s.event, s.end, s.dur)
}

// drive calls next for slots slots of the sender's interval from base and
// returns the packets it made, with the slot index of each.
func drive(s *dtmfSender, base uint32, slots int) (out []sent, at []int) {
	for i := range slots {
		p, ok := s.next(base + uint32(i)*s.interval)
		if !ok {
			continue
		}
		e, _ := decodeDTMFEvent(p.payload[:])
		if e.volume != dtmfVolume {
			panic("volume")
		}
		out = append(out, sent{p.timestamp, p.marker, e.event, e.end, e.duration})
		at = append(at, i)
	}
	return out, at
}

func TestDTMFSender(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		clock  uint32
		digits []DTMFDigit
		base   uint32
		want   []sent
		at     []int // slot of each packet
	}{
		{
			name: "100 ms at 8 kHz", clock: 8000, base: 1000,
			digits: []DTMFDigit{{5, 100 * ms}},
			want: []sent{
				{1000, true, 5, false, 160}, {1000, false, 5, false, 320}, {1000, false, 5, false, 480},
				{1000, false, 5, false, 640}, {1000, false, 5, true, 800}, {1000, false, 5, true, 800},
				{1000, false, 5, true, 800},
			},
			at: []int{0, 1, 2, 3, 4, 5, 6},
		},
		{
			name: "100 ms at 48 kHz", clock: 48000, base: 0xFFFFF000, // the timestamp wraps
			digits: []DTMFDigit{{11, 100 * ms}},
			want: []sent{
				{0xFFFFF000, true, 11, false, 960}, {0xFFFFF000, false, 11, false, 1920},
				{0xFFFFF000, false, 11, false, 2880}, {0xFFFFF000, false, 11, false, 3840},
				{0xFFFFF000, false, 11, true, 4800}, {0xFFFFF000, false, 11, true, 4800},
				{0xFFFFF000, false, 11, true, 4800},
			},
			at: []int{0, 1, 2, 3, 4, 5, 6},
		},
		{
			name: "duration not a whole interval", clock: 8000, base: 0,
			digits: []DTMFDigit{{1, 50 * ms}},
			want: []sent{
				{0, true, 1, false, 160}, {0, false, 1, false, 320}, {0, false, 1, true, 400},
				{0, false, 1, true, 400}, {0, false, 1, true, 400},
			},
			at: []int{0, 1, 2, 3, 4},
		},
		{
			name: "short clamped to 40 ms, gap before the next", clock: 8000, base: 0,
			digits: []DTMFDigit{{1, ms}, {2, 40 * ms}},
			want: []sent{
				{0, true, 1, false, 160}, {0, false, 1, true, 320}, {0, false, 1, true, 320}, {0, false, 1, true, 320},
				// 40 ms tone + 40 ms gap: the next starts at 640, slot 4.
				{640, true, 2, false, 160}, {640, false, 2, true, 320}, {640, false, 2, true, 320}, {640, false, 2, true, 320},
			},
			at: []int{0, 1, 2, 3, 4, 5, 6, 7},
		},
		{
			name: "same digit twice starts afresh", clock: 8000, base: 100,
			digits: []DTMFDigit{{7, 100 * ms}, {7, 40 * ms}},
			want: []sent{
				{100, true, 7, false, 160}, {100, false, 7, false, 320}, {100, false, 7, false, 480},
				{100, false, 7, false, 640}, {100, false, 7, true, 800}, {100, false, 7, true, 800},
				{100, false, 7, true, 800},
				{100 + 800 + 320, true, 7, false, 160}, {1220, false, 7, true, 320}, {1220, false, 7, true, 320},
				{1220, false, 7, true, 320},
			},
			at: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDTMFSender(tt.clock, 20*ms)
			for _, d := range tt.digits {
				if !s.push(d) {
					t.Fatalf("push %v refused", d)
				}
			}
			got, at := drive(s, tt.base, 40)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("packets\n got %v\nwant %v", got, tt.want)
			}
			if fmt.Sprint(at) != fmt.Sprint(tt.at) {
				t.Errorf("slots %v, want %v", at, tt.at)
			}
			if s.busy() {
				t.Error("still busy")
			}
		})
	}
}

// TestDTMFSenderLongEvent: 2 s at 48 kHz is 96000 units, more than one
// packet can state: two segments, E only at the very end (§2.5.1.3).
func TestDTMFSenderLongEvent(t *testing.T) {
	s := newDTMFSender(48000, 20*time.Millisecond)
	s.push(DTMFDigit{Event: 3, Duration: 2 * time.Second})
	got, _ := drive(s, 5000, 200)
	if len(got) != 102 {
		t.Fatalf("%d packets, want 100 + 2 retransmissions", len(got))
	}
	for i, p := range got {
		var want sent
		switch k := i + 1; {
		case k <= 68:
			want = sent{5000, k == 1, 3, false, uint16(k * 960)}
		case k == 69:
			want = sent{5000, false, 3, false, 0xFFFF}
		case k < 100:
			want = sent{5000 + 0xFFFF, false, 3, false, uint16(k*960 - 0xFFFF)}
		default:
			want = sent{5000 + 0xFFFF, false, 3, true, 96000 - 0xFFFF}
		}
		if p != want {
			t.Fatalf("packet %d = %v, want %v", i+1, p, want)
		}
	}
}

func TestDTMFSenderPacing(t *testing.T) {
	s := newDTMFSender(8000, 20*time.Millisecond)
	if _, ok := s.next(0); ok {
		t.Fatal("packet with nothing queued")
	}
	s.push(DTMFDigit{Event: 4, Duration: 100 * time.Millisecond})
	if p, ok := s.next(0); !ok || !p.marker {
		t.Fatalf("first = %+v, %v", p, ok)
	}
	if !s.busy() {
		t.Fatal("not busy during the event")
	}
	// A caller with 10 ms audio frames calls twice per interval.
	if _, ok := s.next(80); ok {
		t.Fatal("a packet within one interval")
	}
	// A late caller: the duration catches up with the clock.
	p, ok := s.next(480)
	e, _ := decodeDTMFEvent(p.payload[:])
	if !ok || e.duration != 640 || p.timestamp != 0 || p.marker {
		t.Fatalf("late packet = %+v %+v, %v", p, e, ok)
	}
}

func TestDTMFSenderQueue(t *testing.T) {
	s := newDTMFSender(8000, 0)
	if s.push(DTMFDigit{Event: 17}) {
		t.Fatal("queued a non-DTMF event")
	}
	for i := range dtmfQueueLen {
		if !s.push(DTMFDigit{Event: uint8(i % 16)}) {
			t.Fatalf("push %d refused", i)
		}
	}
	if s.push(DTMFDigit{Event: 1}) {
		t.Fatal("queue took more than its slots")
	}
	if _, ok := s.next(0); !ok {
		t.Fatal("no packet")
	}
	if !s.push(DTMFDigit{Event: 1}) {
		t.Fatal("slot not freed by pop")
	}
}

// TestDTMFRoundTrip: every digit, generated at each clock rate, is reported
// once by the receiver with its (clamped) duration.
func TestDTMFRoundTrip(t *testing.T) {
	durations := []time.Duration{0, 10 * time.Millisecond, 40 * time.Millisecond, 100 * time.Millisecond,
		333 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Second, time.Hour}
	for _, clock := range []uint32{8000, 48000} {
		for ev := range uint8(maxDTMFEvent + 1) {
			t.Run(fmt.Sprintf("%d/%d", clock, ev), func(t *testing.T) {
				s := newDTMFSender(clock, 20*time.Millisecond)
				r := newDTMFReceiver(clock)
				var want []DTMFDigit
				for _, d := range durations {
					if !s.push(DTMFDigit{Event: ev, Duration: d}) {
						t.Fatal("push refused")
					}
					want = append(want, DTMFDigit{Event: ev, Duration: clampDTMFDuration(d)})
				}
				var got []DTMFDigit
				seq := uint16(65000) // wraps on the way
				for i := range 2000 {
					p, ok := s.next(0xFFFF0000 + uint32(i)*s.interval)
					if !ok {
						continue
					}
					seq++
					rep := r.receive(p.payload[:], p.timestamp, seq)
					got = append(got, rep.digits[:rep.n]...)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("reported\n%v\nwant\n%v", got, want)
				}
			})
		}
	}
}

// TestDTMFStepsDoNotAllocate holds the packet path's promise.
func TestDTMFStepsDoNotAllocate(t *testing.T) {
	s := newDTMFSender(8000, 20*time.Millisecond)
	r := newDTMFReceiver(8000)
	var now uint32
	var seq uint16
	allocs := testing.AllocsPerRun(1000, func() {
		if !s.busy() {
			s.push(DTMFDigit{Event: 5, Duration: 60 * time.Millisecond})
		}
		now += s.interval
		if p, ok := s.next(now); ok {
			seq++
			r.receive(p.payload[:], p.timestamp, seq)
		}
		r.receive([]byte{1}, now, seq) // a short payload: error path
		r.expire(now)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per step", allocs)
	}
}

func BenchmarkDTMFSenderNext(b *testing.B) {
	s := newDTMFSender(48000, 20*time.Millisecond)
	var now uint32
	b.ReportAllocs()
	for b.Loop() {
		if !s.busy() {
			s.push(DTMFDigit{Event: 5, Duration: 100 * time.Millisecond})
		}
		now += s.interval
		s.next(now)
	}
}

func BenchmarkDTMFReceiverReceive(b *testing.B) {
	s := newDTMFSender(48000, 20*time.Millisecond)
	var pkts []dtmfPacket
	for i := range 100 {
		if !s.busy() {
			s.push(DTMFDigit{Event: uint8(i % 16), Duration: 100 * time.Millisecond})
		}
		if p, ok := s.next(uint32(i) * s.interval); ok {
			pkts = append(pkts, p)
		}
	}
	r := newDTMFReceiver(48000)
	var seq uint16
	var reported int
	b.ReportAllocs()
	b.SetBytes(dtmfPayloadLen)
	for i := 0; b.Loop(); i++ {
		p := &pkts[i%len(pkts)]
		seq++
		// Each lap shifts the timestamps, so every lap's events are new.
		rep := r.receive(p.payload[:], p.timestamp+uint32(i/len(pkts))*100*960, seq)
		reported += rep.n
	}
	if reported == 0 {
		b.Fatal("nothing reported")
	}
}
