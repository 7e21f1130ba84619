package webua

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestOnPacket(t *testing.T) {
	const ourID, otherID = 7, 9
	now := time.Unix(100, 0)
	probe := func(id uint32, sentAt time.Time, size int) []byte {
		payload := make([]byte, size)
		if size >= probeBytes {
			binary.BigEndian.PutUint32(payload[0:4], probeMagic)
			binary.BigEndian.PutUint32(payload[4:8], id)
			binary.BigEndian.PutUint64(payload[8:16], uint64(sentAt.UnixNano()))
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: ptPCMU, CSRC: []uint32{1}}, Payload: payload}
		raw, err := pkt.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return raw
	}
	tests := []struct {
		name       string
		pkt        []byte
		wantEchoed uint64
		wantRTT    time.Duration
	}{
		{name: "our echo", pkt: probe(ourID, now.Add(-30*time.Millisecond), pcmuFrameBytes), wantEchoed: 1, wantRTT: 30 * time.Millisecond},
		{name: "far-end media", pkt: probe(otherID, now.Add(-30*time.Millisecond), pcmuFrameBytes)},
		{name: "short payload", pkt: probe(ourID, now, 8)},
		{name: "from the future", pkt: probe(ourID, now.Add(time.Second), pcmuFrameBytes)},
		{name: "not rtp", pkt: []byte{0x00, 0x01}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &media{id: ourID}
			m.onPacket(tc.pkt, now)
			s := m.stats()
			if s.Received != 1 || !s.FirstReceived.Equal(now) {
				t.Errorf("received = %d first = %v, want 1 at %v", s.Received, s.FirstReceived, now)
			}
			if s.Echoed != tc.wantEchoed {
				t.Errorf("echoed = %d, want %d", s.Echoed, tc.wantEchoed)
			}
			if s.RTTMin != tc.wantRTT || s.RTTAvg != tc.wantRTT || s.RTTMax != tc.wantRTT {
				t.Errorf("rtt min/avg/max = %v/%v/%v, want %v", s.RTTMin, s.RTTAvg, s.RTTMax, tc.wantRTT)
			}
		})
	}
}

func BenchmarkOnPacket(b *testing.B) {
	m := &media{id: 1}
	payload := make([]byte, pcmuFrameBytes)
	binary.BigEndian.PutUint32(payload[0:4], probeMagic)
	binary.BigEndian.PutUint32(payload[4:8], 1)
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}).Marshal()
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		m.onPacket(raw, now)
	}
}
