package mediabridge

import "errors"

// Digits on the packet path. Both legs' RFC 4733 events are read and
// reported once per digit (Event.From, Event.Form); the core's in-band
// tones too when detection is on. Toward the core the call may add digits
// of its own: RFC 4733 events in the core's telephone-event type and clock
// (SendDigit), or tones written into the G.711 audio (PlayDigit). Either
// takes the place of the browser's audio packets while it lasts, keeping
// their SSRC and sequence numbers, so the stream stays one stream.

// DTMFForm is how a digit travelled on the media path.
type DTMFForm uint8

const (
	FormRFC4733 DTMFForm = iota + 1 // telephone-event packets
	FormInband                      // tones in the audio
)

func (f DTMFForm) String() string {
	switch f {
	case FormRFC4733:
		return "rfc4733"
	case FormInband:
		return "inband"
	}
	return "unknown"
}

var (
	// ErrNoCoreEvents: the core took no telephone-event at the clock of
	// its audio, so it cannot be sent RFC 4733 (the call sends INFO).
	ErrNoCoreEvents = errors.New("the core negotiated no telephone-event at its audio clock")
	// ErrNotG711: tones can only be written into G.711 audio.
	ErrNotG711 = errors.New("the core's audio is not G.711")
	// ErrDTMFBusy: dtmfQueueLen digits are waiting already.
	ErrDTMFBusy = errors.New("too many digits waiting")
)

// SendDigit queues d to go to the core as RFC 4733 events, after the
// digits queued before it. Called from the call's goroutine.
func (s *Session) SendDigit(d DTMFDigit) error {
	out := s.fwd.eventsOut.Load()
	switch {
	case out == nil:
		return ErrNoCoreEvents
	case !out.push(d):
		return ErrDTMFBusy
	}
	return nil
}

// CoreTakesEvents tells whether the core negotiated telephone-event at
// the clock of its audio (dtmf.to_core: auto picks RFC 4733 then).
func (s *Session) CoreTakesEvents() bool { return s.fwd.eventsOut.Load() != nil }

// PlayDigit queues d's tone to be written into the audio toward the core,
// which must be G.711.
func (s *Session) PlayDigit(d DTMFDigit) error {
	if law := s.coreLaw(); law == lawNone {
		return ErrNotG711
	}
	if !s.fwd.tonesOut.queue.push(d) {
		return ErrDTMFBusy
	}
	return nil
}

// RelayEventsToCore relays the browser's RFC 4733 to the core (in the
// core's payload type, when it took telephone-event); off, their digits
// are only reported, for the call to send as INFO or tones. Set before
// negotiation.
func (s *Session) RelayEventsToCore(on bool) { s.eventsToCore = on }

// DetectInband reads DTMF tones in the core's G.711 audio and reports
// them like its RFC 4733 digits (Event.Form FormInband). Set before media.
func (s *Session) DetectInband(on bool) {
	if on {
		s.fwd.toneIn = &toneReader{det: dtmfToneDetector{event: noTone}}
	} else {
		s.fwd.toneIn = nil
	}
}

// G.711 laws by static payload type (RFC 3551).
const (
	lawNone = iota
	lawPCMU
	lawPCMA
)

func lawOf(pt uint8) int {
	switch pt & 0x7f {
	case 0:
		return lawPCMU
	case 8:
		return lawPCMA
	}
	return lawNone
}

// coreLaw is the G.711 law of the core's first audio codec, if G.711.
func (s *Session) coreLaw() int {
	for _, p := range s.pairs {
		if !p.core.none() && !p.core.isDTMF() {
			return lawOf(p.core.pt)
		}
	}
	return lawNone
}

// eventSender is the RFC 4733 generator toward the core, in the core's
// telephone-event payload type.
type eventSender struct {
	*dtmfSender
	pt uint8
}

// useCoreEvents keeps the generator for the core's telephone-event at the
// clock of its first audio codec (never mixing 8000 and 48000), made anew
// only when that type or clock changes.
func (f *forwarder) useCoreEvents(pairs []pair) {
	var audio codec
	for _, p := range pairs {
		if !p.core.none() && !p.core.isDTMF() {
			audio = p.core
			break
		}
	}
	for _, p := range pairs {
		if p.core.isDTMF() && p.core.clock == audio.clock {
			if old := f.eventsOut.Load(); old != nil && old.pt == p.core.pt && old.clock == p.core.clock {
				return
			}
			f.eventsOut.Store(&eventSender{dtmfSender: newDTMFSender(p.core.clock, 0), pt: p.core.pt})
			return
		}
	}
	f.eventsOut.Store(nil)
}

// readDigit feeds one telephone-event packet of a leg to that leg's
// receiver (made on the first one, for the clock it goes with) and reports
// the digits it completes.
func (f *forwarder) readDigit(rx **dtmfReceiver, from Leg, pkt []byte, clock uint32) {
	head, ok := rtpPayloadStart(pkt)
	if !ok || len(pkt) < head+dtmfPayloadLen {
		return
	}
	if *rx == nil || (*rx).clock != clock {
		*rx = newDTMFReceiver(clock)
	}
	ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
	seq := uint16(pkt[2])<<8 | uint16(pkt[3])
	got := (*rx).receive(pkt[head:], ts, seq)
	for i := range got.n {
		if f.onDigit != nil {
			f.onDigit(from, FormRFC4733, got.digits[i])
		}
	}
}

// rtpPayloadStart is where pkt's payload begins, past CSRCs and a header
// extension (RFC 3550 5.1, 5.3.1).
func rtpPayloadStart(pkt []byte) (int, bool) {
	if len(pkt) < rtpHeaderLen {
		return 0, false
	}
	head := rtpHeaderLen + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < head+4 {
			return 0, false
		}
		head += 4 + 4*(int(pkt[head+2])<<8|int(pkt[head+3]))
	}
	return head, len(pkt) >= head
}

// digitsIntoAudio puts a digit of the call's in place of the browser's
// audio packet pkt (payload type already the core's), when one is due:
// an RFC 4733 event packet if the core takes them at the audio's clock,
// else the next 20 ms of a tone in G.711. buf is pkt's buffer, with room
// beyond it. It returns the packet to send.
func (f *forwarder) digitsIntoAudio(buf, pkt []byte, clock uint32, sc *loopScratch) []byte {
	if out := f.eventsOut.Load(); out != nil && out.clock == clock {
		ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
		if head, ok := rtpPayloadStart(pkt); ok && cap(buf) >= head+dtmfPayloadLen {
			if p, ok := out.next(ts); ok {
				return eventPacket(buf[:head+dtmfPayloadLen], head, out.pt, p)
			}
		}
	}
	law := lawOf(pkt[1])
	if law == lawNone || pkt[0]&0x20 != 0 || !f.tonesOut.playing() {
		return pkt // the usual case: no digit, the header is not read further
	}
	head, ok := rtpPayloadStart(pkt)
	if !ok {
		return pkt
	}
	payload := pkt[head:]
	pcm := sc.pcm[:min(len(payload), len(sc.pcm))]
	if !f.tonesOut.fill(pcm) {
		return pkt
	}
	for i, v := range pcm {
		if law == lawPCMU {
			payload[i] = ulawEncode(v)
		} else {
			payload[i] = alawEncode(v)
		}
	}
	return pkt
}

// eventPacket turns the audio packet pkt (its header kept, head bytes
// long) into the event packet p in type pt.
func eventPacket(pkt []byte, head int, pt uint8, p dtmfPacket) []byte {
	pkt[0] &^= 0x20 // no padding: the payload is ours
	pkt[1] = pt
	if p.marker {
		pkt[1] |= 0x80
	}
	pkt[4], pkt[5], pkt[6], pkt[7] = byte(p.timestamp>>24), byte(p.timestamp>>16), byte(p.timestamp>>8), byte(p.timestamp)
	copy(pkt[head:], p.payload[:])
	return pkt
}

// toneSender plays queued digits as tones, each followed by dtmfGap of
// silence; the call pushes, the poll loop fills.
type toneSender struct {
	queue  dtmfQueue
	gen    dtmfToneGen
	active bool
	gap    int // samples of silence still owed after a tone
}

// playing tells whether a tone or its gap is on, or a digit waits.
func (t *toneSender) playing() bool {
	return t.active || t.gap > 0 || t.queue.head.Load() != t.queue.tail.Load()
}

// fill writes the next samples of tone or gap into dst; false when no
// digit is playing (dst is left alone, the audio goes as it is).
func (t *toneSender) fill(dst []int16) bool {
	if !t.active && t.gap == 0 {
		d, ok := t.queue.pop()
		if !ok {
			return false
		}
		if t.gen, t.active = newDTMFToneGen(d); !t.active {
			return false // hook flash has no tone
		}
	}
	n := 0
	if t.active {
		n = t.gen.read(dst)
		if n < len(dst) {
			t.active, t.gap = false, int(dtmfTicks(dtmfGap, toneRate))
		}
	}
	for i := n; i < len(dst); i++ {
		dst[i] = 0
	}
	t.gap = max(t.gap-(len(dst)-n), 0)
	return true
}

// toneReader finds DTMF tones in the core's G.711 audio, in frames of
// toneFrame samples whatever the packet size.
type toneReader struct {
	det   dtmfToneDetector
	frame [toneFrame]int16
	n     int
}

// read takes one core RTP packet; a G.711 one is decoded into frames for
// the detector, whose digits are reported as the core's.
func (r *toneReader) read(pkt []byte, report func(Leg, DTMFForm, DTMFDigit)) {
	law := lawOf(pkt[1])
	head, ok := rtpPayloadStart(pkt)
	if law == lawNone || !ok || pkt[0]&0x20 != 0 {
		return
	}
	for _, b := range pkt[head:] {
		if law == lawPCMU {
			r.frame[r.n] = ulawDecode(b)
		} else {
			r.frame[r.n] = alawDecode(b)
		}
		if r.n++; r.n < toneFrame {
			continue
		}
		r.n = 0
		if d, ok := r.det.detect(r.frame[:]); ok && report != nil {
			report(LegCore, FormInband, d)
		}
	}
}
