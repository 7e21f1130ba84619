package webua

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap/zaptest"
)

// recordingObserver keeps what a PacketObserver is told.
type recordingObserver struct {
	mu     sync.Mutex
	sent   []time.Time
	echoes [][2]time.Time
}

func (r *recordingObserver) ProbeSent(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, at)
}

func (r *recordingObserver) ProbeEchoed(sentAt, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.echoes = append(r.echoes, [2]time.Time{sentAt, at})
}

func TestObserverSeesEchoes(t *testing.T) {
	const ourID, otherID = 7, 9
	now := time.Unix(100, 0)
	sentAt := now.Add(-40 * time.Millisecond)
	probe := func(id uint32) []byte {
		payload := make([]byte, pcmuFrameBytes)
		binary.BigEndian.PutUint32(payload[0:4], probeMagic)
		binary.BigEndian.PutUint32(payload[4:8], id)
		binary.BigEndian.PutUint64(payload[8:16], uint64(sentAt.UnixNano()))
		raw, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: ptPCMU}, Payload: payload}).Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return raw
	}
	tests := []struct {
		name       string
		pkt        []byte
		wantEchoes int
	}{
		{"our echo", probe(ourID), 1},
		{"far-end media", probe(otherID), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingObserver{}
			m := &media{id: ourID, observer: rec}
			m.onPacket(tc.pkt, now)
			if len(rec.echoes) != tc.wantEchoes {
				t.Fatalf("observer saw %d echoes, want %d", len(rec.echoes), tc.wantEchoes)
			}
			s := m.stats()
			if tc.wantEchoes == 0 {
				if !s.FirstEchoed.IsZero() {
					t.Errorf("first echoed = %v, want zero", s.FirstEchoed)
				}
				return
			}
			if !rec.echoes[0][0].Equal(sentAt) || !rec.echoes[0][1].Equal(now) {
				t.Errorf("echo (sent, at) = %v, want (%v, %v)", rec.echoes[0], sentAt, now)
			}
			if !s.FirstEchoed.Equal(now) {
				t.Errorf("first echoed = %v, want %v", s.FirstEchoed, now)
			}
		})
	}
}

// TestDialFromLocalIP checks the WebSocket leaves from Config.LocalIP, so a
// load generator can spread clients over source addresses.
func TestDialFromLocalIP(t *testing.T) {
	seen := make(chan string, 1)
	peer := newWSPeer(t, func(conn *peerConn) {
		host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
		seen <- host
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ua, err := Dial(ctx, Config{URL: peer.url, AoR: "sip:alice@imsgate.test", LocalIP: net.IPv4(127, 0, 0, 2), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ua.Close()
	select {
	case host := <-seen:
		if host != "127.0.0.2" {
			t.Errorf("server saw the client at %s, want 127.0.0.2", host)
		}
	case <-ctx.Done():
		t.Fatal("server saw no connection")
	}
}
