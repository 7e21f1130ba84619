package mediabridge

import "time"

const (
	// dtmfHistory is how many recent event timestamps the receiver keeps,
	// to know a late or retransmitted packet of an event already over.
	dtmfHistory = 16
	// dtmfSegmentSlack is how far below dtmfMaxSegment a next segment of a
	// long event may start: some senders close a segment at the last whole
	// packet interval that fits (§2.5.2.3).
	dtmfSegmentSlack = 0x1000
	// dtmfExpiry is how long past its last known duration an event with no
	// end packet is held before expire reports it.
	dtmfExpiry = 200 * time.Millisecond
)

// dtmfReports holds the digits one received packet completes: none, one,
// or two (an event whose end was lost, and a new one that is already over).
type dtmfReports struct {
	digits [2]DTMFDigit
	n      int
}

func (r *dtmfReports) add(d DTMFDigit) {
	r.digits[r.n] = d
	r.n++
}

// dtmfReceiver turns received telephone-event packets into digits (RFC
// 4733 §2.5.2), each exactly once: at its first end packet, or when a
// newer event starts before an end was seen. Updates and the retransmitted
// end packets (§2.5.1.4) add nothing; the first packets may be lost and
// packets reordered. The owner calls reset when the stream's SSRC changes.
// It never allocates.
type dtmfReceiver struct {
	clock uint32

	started  bool   // cur holds an event
	event    uint8  // current event's code
	segTS    uint32 // timestamp of its current segment
	segment  uint32 // duration of its earlier segments (§2.5.2.3)
	maxDur   uint16 // longest duration seen in the current segment
	reported bool
	lastSeq  uint16 // highest sequence number seen

	seen  [dtmfHistory]uint32 // timestamps of recent events and segments
	seenN int
}

func newDTMFReceiver(clock uint32) *dtmfReceiver {
	return &dtmfReceiver{clock: clock}
}

// reset forgets the stream: a new SSRC numbers afresh (RFC 3550 §8).
func (r *dtmfReceiver) reset() { *r = dtmfReceiver{clock: r.clock} }

// receive takes one telephone-event payload with its RTP timestamp and
// sequence number and returns the digits it completes.
func (r *dtmfReceiver) receive(payload []byte, ts uint32, seq uint16) (out dtmfReports) {
	e, err := decodeDTMFEvent(payload)
	if err != nil || e.event > maxDTMFEvent {
		return out // RFC 4734 events and the like are not digits
	}
	newerSeq := !r.started || int16(seq-r.lastSeq) > 0
	if newerSeq {
		r.lastSeq = seq
	}
	switch {
	case !r.started:
		r.begin(ts, e)
	case ts == r.segTS:
		r.update(e)
	case r.known(ts):
		return out // a late packet of an event or segment already left behind
	case r.continues(ts, e):
		// §2.5.2.3: the next segment of a long event, not a new press.
		r.segment += ts - r.segTS
		r.segTS, r.maxDur = ts, e.duration
		r.remember(ts)
		r.update(e)
	case int32(ts-r.segTS) < 0 && !newerSeq:
		// An older event first seen after a newer one: too late to report
		// in order. A newer sequence number with an older timestamp is a
		// restarted stream, taken below as a new event.
		return out
	default:
		if !r.reported {
			out.add(r.digit()) // the end of the previous event was lost
		}
		r.begin(ts, e)
	}
	if e.end && !r.reported { // every branch here left ts as the current segment
		r.reported = true
		out.add(r.digit())
	}
	return out
}

// expire reports the current event if no packet has extended it for
// dtmfExpiry before now, a timestamp of the stream (its audio packets):
// all end packets of the last digit were lost and no digit followed.
func (r *dtmfReceiver) expire(now uint32) (DTMFDigit, bool) {
	if !r.started || r.reported {
		return DTMFDigit{}, false
	}
	if int32(now-(r.segTS+uint32(r.maxDur))) < int32(dtmfTicks(dtmfExpiry, r.clock)) {
		return DTMFDigit{}, false
	}
	r.reported = true
	return r.digit(), true
}

func (r *dtmfReceiver) begin(ts uint32, e dtmfEvent) {
	r.started, r.event, r.segTS, r.segment = true, e.event, ts, 0
	r.maxDur, r.reported = e.duration, false
	r.remember(ts)
}

func (r *dtmfReceiver) update(e dtmfEvent) {
	r.maxDur = max(r.maxDur, e.duration)
}

// continues tells whether ts starts the next segment of the current event:
// same event, not ended, and about dtmfMaxSegment after the last segment.
func (r *dtmfReceiver) continues(ts uint32, e dtmfEvent) bool {
	delta := ts - r.segTS
	return !r.reported && e.event == r.event &&
		delta >= dtmfMaxSegment-dtmfSegmentSlack && delta <= dtmfMaxSegment+1
}

func (r *dtmfReceiver) known(ts uint32) bool {
	for i := range min(r.seenN, dtmfHistory) {
		if r.seen[i] == ts {
			return true
		}
	}
	return false
}

func (r *dtmfReceiver) remember(ts uint32) {
	r.seen[r.seenN%dtmfHistory] = ts
	r.seenN++
	if r.seenN == 2*dtmfHistory {
		r.seenN = dtmfHistory // keep the ring full without overflowing
	}
}

func (r *dtmfReceiver) digit() DTMFDigit {
	return DTMFDigit{
		Event:    r.event,
		Duration: dtmfTicksDuration(uint64(r.segment)+uint64(r.maxDur), r.clock),
	}
}
