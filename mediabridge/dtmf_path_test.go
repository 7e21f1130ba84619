package mediabridge

import (
	"net"
	"testing"
	"time"
)

// pathRig is a forwarder between a browser (packets fed to webToCore) and
// a loopback socket standing in for the core.
type pathRig struct {
	t      *testing.T
	f      *forwarder
	core   *net.UDPConn
	sc     *loopScratch
	seq    uint16
	ts     uint32
	digits []Event
}

func newPathRig(t *testing.T, pairs []pair, eventsToCore bool) *pathRig {
	r := &pathRig{t: t, core: listenLoopback(t), sc: &loopScratch{}, seq: 1000, ts: 50000}
	r.f = &forwarder{core: loopbackSocket(t)}
	s := &Session{fwd: r.f, pairs: pairs, eventsToCore: eventsToCore,
		web: legState{dir: directionSendRecv}, core: legState{dir: directionSendRecv}}
	s.installPairs()
	r.f.setCoreRemote(addrOf(r.core))
	r.f.onDigit = func(from Leg, form DTMFForm, d DTMFDigit) {
		r.digits = append(r.digits, Event{Kind: EventDTMF, From: from, Form: form, Digit: d})
	}
	return r
}

// audio sends one 20 ms browser audio packet of pt (clock ticks per
// packet) and returns what reached the core, nil if nothing.
func (r *pathRig) audio(pt uint8, payload int, ticks uint32) []byte {
	buf := make([]byte, maxPacket)
	n := rtpHeaderLen + payload
	buf[0], buf[1] = 0x80, pt
	buf[2], buf[3] = byte(r.seq>>8), byte(r.seq)
	buf[4], buf[5], buf[6], buf[7] = byte(r.ts>>24), byte(r.ts>>16), byte(r.ts>>8), byte(r.ts)
	buf[11] = 9
	for i := rtpHeaderLen; i < n; i++ {
		buf[i] = 0xff // PCMU silence
	}
	r.seq++
	r.ts += ticks
	return r.send(buf, n)
}

func (r *pathRig) send(buf []byte, n int) []byte {
	r.f.webToCore(buf, n, r.sc)
	_ = r.core.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	got := make([]byte, maxPacket)
	k, _, err := r.core.ReadFromUDPAddrPort(got)
	if err != nil {
		return nil
	}
	return got[:k]
}

var (
	pcmu     = codec{name: "PCMU", clock: 8000, pt: 0}
	opus     = codec{name: "opus", clock: 48000, pt: 111, channels: 2}
	events8  = codec{name: telephoneEvent, clock: 8000, pt: 126}
	events48 = codec{name: telephoneEvent, clock: 48000, pt: 110}
)

func linked(web, core codec) pair { return pair{web: web, core: core, webAlt: ptNone, coreAlt: ptNone} }

func renumbered(c codec, pt uint8) codec { c.pt = pt; return c }

// TestSendDigitOnTheWire: a digit the call sends as RFC 4733 goes out in
// the core's telephone-event type and clock, in place of the audio: one
// event, one timestamp, growing durations, marker on the first packet, the
// end three times, the sequence unbroken, and the audio back after it.
func TestSendDigitOnTheWire(t *testing.T) {
	tests := []struct {
		name   string
		audio  pair
		events pair
		ticks  uint32
		corePT uint8
	}{
		{"PCMU with events at 8000", linked(pcmu, pcmu), linked(events8, renumbered(events8, 101)), 160, 101},
		{"opus with events at 48000", linked(opus, renumbered(opus, 96)), linked(events48, renumbered(events48, 97)), 960, 97},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPathRig(t, []pair{tt.audio, tt.events}, true)
			s := &Session{fwd: r.f}
			if !s.CoreTakesEvents() {
				t.Fatal("the core took telephone-event")
			}
			if err := s.SendDigit(DTMFDigit{Event: 5, Duration: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if err := s.SendDigit(DTMFDigit{Event: 11, Duration: 60 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			type wire struct {
				rx
				marker bool
			}
			var got []wire
			lastSeq := uint16(0)
			var audioAfter int
			for i := range 30 {
				pkt := r.audio(tt.audio.web.pt, 20, tt.ticks)
				if pkt == nil {
					t.Fatalf("packet %d did not reach the core", i)
				}
				seq := uint16(pkt[2])<<8 | uint16(pkt[3])
				if i > 0 && seq != lastSeq+1 {
					t.Fatalf("sequence %d after %d", seq, lastSeq)
				}
				lastSeq = seq
				if pkt[1]&0x7f != tt.corePT {
					if pkt[1]&0x7f != tt.audio.core.pt {
						t.Fatalf("payload type %d", pkt[1]&0x7f)
					}
					audioAfter++
					continue
				}
				ev, err := decodeDTMFEvent(pkt[rtpHeaderLen:])
				if err != nil || len(pkt) != rtpHeaderLen+4 {
					t.Fatalf("event packet %x: %v", pkt, err)
				}
				ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
				got = append(got, wire{rx{ts: ts, seq: seq, event: ev.event, end: ev.end, dur: ev.duration}, pkt[1]&0x80 != 0})
			}
			// Read back, as a receiver would: two digits, once each.
			recv := newDTMFReceiver(tt.events.core.clock)
			var digits []DTMFDigit
			for _, p := range got {
				out := recv.receive(p.payload(), p.ts, p.seq)
				digits = append(digits, out.digits[:out.n]...)
			}
			if len(digits) != 2 || digits[0].Signal() != "5" || digits[1].Signal() != "#" ||
				digits[0].Duration != 100*time.Millisecond || digits[1].Duration != 60*time.Millisecond {
				t.Fatalf("digits %+v from %+v", digits, got)
			}
			first, ends := got[0], 0
			for i, p := range got {
				if p.event == first.event && p.ts != first.ts {
					t.Errorf("packet %d of the first event moved its timestamp", i)
				}
				if p.marker != (i == 0 || p.event != got[i-1].event) {
					t.Errorf("packet %d marker %v", i, p.marker)
				}
				if p.event == 5 && p.end {
					ends++
					if p.dur != uint16(dtmfTicks(100*time.Millisecond, tt.events.core.clock)) {
						t.Errorf("end duration %d", p.dur)
					}
				}
			}
			if ends != dtmfEndPackets {
				t.Errorf("end sent %d times, want %d", ends, dtmfEndPackets)
			}
			if audioAfter == 0 {
				t.Error("the audio never came back")
			}
		})
	}
}

// TestSendDigitNeedsCoreEvents: with no telephone-event at the clock of
// the core's audio, no events are made (the call sends INFO instead).
func TestSendDigitNeedsCoreEvents(t *testing.T) {
	r := newPathRig(t, []pair{linked(opus, renumbered(opus, 96)), linked(events8, renumbered(events8, 101))}, true)
	s := &Session{fwd: r.f}
	if s.CoreTakesEvents() || s.SendDigit(DTMFDigit{Event: 1}) != ErrNoCoreEvents {
		t.Fatal("events at 8000 beside opus at 48000 must not be used")
	}
}

// TestBrowserEvents: the browser's RFC 4733 is read once per digit; it is
// relayed in the core's type when dtmf.to_core keeps events, and not at
// all when the call sends the digit another way or the core took none.
func TestBrowserEvents(t *testing.T) {
	tests := []struct {
		name         string
		pairs        []pair
		eventsToCore bool
		wantRelayed  bool
	}{
		{"relayed", []pair{linked(pcmu, pcmu), linked(events8, renumbered(events8, 101))}, true, true},
		{"to INFO", []pair{linked(pcmu, pcmu), linked(events8, renumbered(events8, 101))}, false, false},
		{"core took none", webEvents([]pair{linked(pcmu, pcmu)}, []codec{pcmu, events8}), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPathRig(t, tt.pairs, tt.eventsToCore)
			relayed := 0
			for _, p := range press(7000, 1, 9, 5) {
				buf := make([]byte, maxPacket)
				pl := p.payload()
				buf[0], buf[1] = 0x80, events8.pt
				buf[2], buf[3] = byte(p.seq>>8), byte(p.seq)
				buf[4], buf[5], buf[6], buf[7] = byte(p.ts>>24), byte(p.ts>>16), byte(p.ts>>8), byte(p.ts)
				copy(buf[rtpHeaderLen:], pl)
				if got := r.send(buf, rtpHeaderLen+len(pl)); got != nil {
					if got[1]&0x7f != 101 {
						t.Fatalf("relayed with type %d", got[1]&0x7f)
					}
					relayed++
				}
			}
			if (relayed > 0) != tt.wantRelayed {
				t.Fatalf("relayed %d packets", relayed)
			}
			if len(r.digits) != 1 || r.digits[0].From != LegWeb || r.digits[0].Digit.Signal() != "9" {
				t.Fatalf("digits %+v, want one 9 from the browser", r.digits)
			}
		})
	}
}

// TestPlayDigitInband: a tone the call plays replaces the G.711 audio
// toward the core for its duration; a detector at the core hears the
// digits, once each, in order.
func TestPlayDigitInband(t *testing.T) {
	for _, law := range []codec{pcmu, {name: "PCMA", clock: 8000, pt: 8}} {
		t.Run(law.name, func(t *testing.T) {
			// The core took events too: tones are what dtmf.to_core asked.
			pairs := []pair{linked(law, law), linked(events8, renumbered(events8, 101))}
			r := newPathRig(t, pairs, false)
			s := &Session{fwd: r.f, pairs: pairs}
			for _, ev := range []uint8{1, 0, 11} {
				if err := s.PlayDigit(DTMFDigit{Event: ev, Duration: 80 * time.Millisecond}); err != nil {
					t.Fatal(err)
				}
			}
			det := &toneReader{det: dtmfToneDetector{event: noTone}}
			var heard []DTMFDigit
			for range 40 {
				pkt := r.audio(law.pt, 160, 160)
				if pkt == nil || pkt[1]&0x7f != law.pt {
					t.Fatalf("audio packet %x", pkt)
				}
				det.read(pkt, func(_ Leg, _ DTMFForm, d DTMFDigit) { heard = append(heard, d) })
			}
			if len(heard) != 3 || heard[0].Signal() != "1" || heard[1].Signal() != "0" || heard[2].Signal() != "#" {
				t.Fatalf("heard %+v", heard)
			}
		})
	}
	r := newPathRig(t, []pair{linked(opus, opus)}, false)
	s := &Session{fwd: r.f, pairs: []pair{linked(opus, opus)}}
	if s.PlayDigit(DTMFDigit{Event: 1}) != ErrNotG711 {
		t.Fatal("tones need G.711")
	}
}

// TestDetectInbandFromCore: tones in the core's G.711 audio, in packets of
// any size, are reported as the core's digits.
func TestDetectInbandFromCore(t *testing.T) {
	f := &forwarder{}
	s := &Session{fwd: f}
	s.DetectInband(true)
	var heard []Event
	f.onDigit = func(from Leg, form DTMFForm, d DTMFDigit) {
		heard = append(heard, Event{From: from, Form: form, Digit: d})
	}
	var gen toneSender
	gen.queue.push(DTMFDigit{Event: 3, Duration: 100 * time.Millisecond})
	gen.queue.push(DTMFDigit{Event: 10, Duration: 100 * time.Millisecond})
	pcm := make([]int16, 240) // 30 ms packets
	for range 20 {
		if !gen.fill(pcm) {
			clear(pcm)
		}
		pkt := make([]byte, rtpHeaderLen+len(pcm))
		pkt[0] = 0x80
		for i, v := range pcm {
			pkt[rtpHeaderLen+i] = ulawEncode(v)
		}
		f.toneIn.read(pkt, f.onDigit)
	}
	if len(heard) != 2 || heard[0].Digit.Signal() != "3" || heard[1].Digit.Signal() != "*" ||
		heard[0].From != LegCore || heard[0].Form != FormInband {
		t.Fatalf("heard %+v", heard)
	}
}

// FuzzDigitPath: any packet from either side, whatever its CSRC count,
// header extension, padding or payload type, crosses the digit path
// (browser events read, events and tones put into the audio, the core's
// tones read) without a panic, and never grows past its buffer.
func FuzzDigitPath(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x90, 126, 0, 2, 0, 0, 1, 0, 0, 0, 0, 9, 0xbe, 0xde, 0xff, 0xff, 5, 10, 0, 160})
	f.Add([]byte{0xaf, 0x80, 0, 3, 0, 0, 2, 0, 0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		pairs := []pair{linked(pcmu, pcmu), linked(events8, renumbered(events8, 101))}
		r := newPathRig(t, pairs, len(pkt)%2 == 0)
		s := &Session{fwd: r.f, pairs: pairs}
		s.DetectInband(true)
		_ = s.SendDigit(DTMFDigit{Event: 1, Duration: 40 * time.Millisecond})
		_ = s.PlayDigit(DTMFDigit{Event: 2, Duration: 40 * time.Millisecond})
		for range 4 {
			buf := make([]byte, maxPacket)
			n := copy(buf, pkt)
			r.f.webToCore(buf, n, r.sc)
			if r.f.toneIn != nil && len(pkt) >= rtpHeaderLen {
				r.f.toneIn.read(pkt, r.f.onDigit)
			}
		}
	})
}
