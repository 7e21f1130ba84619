package mediabridge

import (
	"sync/atomic"
	"time"
)

const (
	// dtmfPayloadLen is one event report (RFC 4733 §2.3).
	dtmfPayloadLen = 4
	// dtmfVolume is the power we send, -10 dBm0 (§2.3.4): within the Q.24
	// acceptance range, and the level dtmfToneGen plays.
	dtmfVolume = 10
	// dtmfEndPackets is how often the final packet goes out (§2.5.1.4).
	dtmfEndPackets = 3
	// dtmfMaxSegment is the longest duration one packet can state; a longer
	// event is sent as segments (§2.5.1.3).
	dtmfMaxSegment = 0xFFFF
	// dtmfQueueLen bounds the digits waiting to be sent: a burst of INFOs
	// beyond it is refused, not buffered without limit.
	dtmfQueueLen = 32
)

// dtmfEvent is one telephone-event report (RFC 4733 §2.3):
//
//	event(8) | E(1) R(1) volume(6) | duration(16)
type dtmfEvent struct {
	event    uint8
	end      bool
	volume   uint8  // -dBm0, 0-63
	duration uint16 // timestamp units since the event (segment) began
}

// decodeDTMFEvent reads the first report of a payload. More reports in one
// packet (§2.5.1.5) are left unread: senders do not pack DTMF that way. The
// R bit is ignored (§2.3.3).
func decodeDTMFEvent(p []byte) (dtmfEvent, error) {
	if len(p) < dtmfPayloadLen {
		return dtmfEvent{}, errShortDTMFEvent // unwrapped: the packet path does not allocate
	}
	return dtmfEvent{
		event:    p[0],
		end:      p[1]&0x80 != 0,
		volume:   p[1] & 0x3f,
		duration: uint16(p[2])<<8 | uint16(p[3]),
	}, nil
}

// encode is the wire form of e, with R sent as zero (§2.3.3).
func (e dtmfEvent) encode() [dtmfPayloadLen]byte {
	b1 := e.volume & 0x3f
	if e.end {
		b1 |= 0x80
	}
	return [dtmfPayloadLen]byte{e.event, b1, byte(e.duration >> 8), byte(e.duration)}
}

// dtmfPacket is what the sender puts in one RTP packet: the payload, the
// marker bit and the RTP timestamp, in the timebase of the stream it joins.
type dtmfPacket struct {
	payload   [dtmfPayloadLen]byte
	marker    bool
	timestamp uint32
}

// dtmfQueue hands digits from the call goroutine (push) to the poll loop
// (pop) without a lock: one producer, one consumer, fixed slots.
type dtmfQueue struct {
	slots [dtmfQueueLen]DTMFDigit
	head  atomic.Uint32 // next slot to pop; written by the consumer
	tail  atomic.Uint32 // next slot to fill; written by the producer
}

func (q *dtmfQueue) push(d DTMFDigit) bool {
	t := q.tail.Load()
	if t-q.head.Load() >= dtmfQueueLen {
		return false
	}
	q.slots[t%dtmfQueueLen] = d
	q.tail.Store(t + 1) // publishes the slot
	return true
}

func (q *dtmfQueue) pop() (DTMFDigit, bool) {
	h := q.head.Load()
	if h == q.tail.Load() {
		return DTMFDigit{}, false
	}
	d := q.slots[h%dtmfQueueLen]
	q.head.Store(h + 1) // frees the slot
	return d, true
}

// dtmfSender generates RFC 4733 §2.5.1 packets for queued digits. The
// packet path calls next once per packet interval with the RTP timestamp
// of the slot it is filling; digits never overlap, each starting at least
// dtmfGap after the previous one ended, and take their timestamps from
// the stream's. next never allocates. push is for one other goroutine.
type dtmfSender struct {
	queue    dtmfQueue
	clock    uint32 // of the telephone-event format: 8000 or 48000
	interval uint32 // packet interval, timestamp units
	gap      uint32 // dtmfGap, timestamp units

	active  bool   // an event is being sent
	event   uint8  // its code
	start   uint32 // its RTP timestamp
	total   uint32 // its duration
	segment uint32 // offset of the current segment from start (§2.5.1.3)
	marker  bool   // the next packet is the event's first (§2.5.1.2)
	ends    int    // final packets sent so far (§2.5.1.4)

	timed bool   // due and free hold
	due   uint32 // earliest timestamp of the next packet
	free  uint32 // earliest start of the next event
}

// newDTMFSender makes a sender for a clock rate and packet interval (20 ms
// when zero).
func newDTMFSender(clock uint32, interval time.Duration) *dtmfSender {
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	s := &dtmfSender{
		clock:    clock,
		interval: max(dtmfTicks(interval, clock), 1),
		gap:      dtmfTicks(dtmfGap, clock),
	}
	return s
}

// push queues a digit; false when the queue is full or the event is not
// DTMF.
func (s *dtmfSender) push(d DTMFDigit) bool {
	if d.Event > maxDTMFEvent {
		return false
	}
	return s.queue.push(d)
}

// busy tells whether an event is on the wire: its packets take the place
// of the audio, which is not sent meanwhile (§2.5.1.2 shares the stream's
// timestamps, so two sources in one slot would collide).
func (s *dtmfSender) busy() bool { return s.active }

// next is the packet for the slot starting at RTP timestamp now, if one is
// due; ok is false when the slot belongs to the audio.
func (s *dtmfSender) next(now uint32) (p dtmfPacket, ok bool) {
	if s.timed && int32(now-s.due) < 0 {
		return p, false // called again within one interval
	}
	if !s.active {
		if s.timed && int32(now-s.free) < 0 {
			return p, false
		}
		d, ok := s.queue.pop()
		if !ok {
			return p, false
		}
		s.begin(d, now)
	}
	s.timed, s.due = true, now+s.interval
	return s.step(now), true
}

func (s *dtmfSender) begin(d DTMFDigit, now uint32) {
	s.active, s.event, s.start = true, d.Event, now
	s.total = max(dtmfTicks(clampDTMFDuration(d.Duration), s.clock), 1)
	s.segment, s.marker, s.ends = 0, true, 0
}

// step makes the event's packet for the slot at now.
func (s *dtmfSender) step(now uint32) dtmfPacket {
	if s.ends > 0 { // §2.5.1.4: the final packet again, same duration
		s.ends++
		p := s.packet(s.total-s.segment, true)
		if s.ends >= dtmfEndPackets {
			s.finish()
		}
		return p
	}
	// The packet covers its slot: the tone has lasted to the slot's end.
	elapsed := s.interval
	if since := now - s.start; int32(since) > 0 {
		elapsed += since
	}
	end := elapsed >= s.total
	if end {
		elapsed = s.total
	}
	if elapsed-s.segment > dtmfMaxSegment {
		// §2.5.1.3: close this segment at the largest duration and go on
		// in a new one, timestamped where this one stops, without E.
		p := s.packet(dtmfMaxSegment, false)
		s.segment += dtmfMaxSegment
		return p
	}
	if end {
		s.ends = 1
	}
	return s.packet(elapsed-s.segment, end)
}

func (s *dtmfSender) packet(duration uint32, end bool) dtmfPacket {
	p := dtmfPacket{
		payload: dtmfEvent{
			event:    s.event,
			end:      end,
			volume:   dtmfVolume,
			duration: uint16(duration),
		}.encode(),
		marker:    s.marker,
		timestamp: s.start + s.segment,
	}
	s.marker = false
	return p
}

// finish ends the event; the next may start once the tone and a gap have
// passed.
func (s *dtmfSender) finish() {
	s.active = false
	s.free = s.start + s.total + s.gap
}
