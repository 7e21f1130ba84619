package democore

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

const (
	rtpHeaderLen   = 12
	maxPacketBytes = 1500
	// packetInterval and samplesPerPacket make a 20 ms G.711 stream.
	packetInterval   = 20 * time.Millisecond
	samplesPerPacket = 160
)

// isRTP tells RTP from anything else on the socket (RFC 5761 §4: payload
// types 64-95 with the marker bit would be RTCP; plain RTP/AVP has no mux,
// so only the version is checked plus a minimal length).
func isRTP(b []byte) bool {
	return len(b) >= rtpHeaderLen && b[0]>>6 == 2
}

// echoMedia owns one UDP socket that sends every RTP packet back to its
// source (symmetric RTP). Telephone-events (RFC 4733) of type events are
// read too: each key press is reported once to onDigit, when its first end
// packet comes (its retransmissions and updates add nothing).
type echoMedia struct {
	conn    net.PacketConn
	in      atomic.Uint64
	out     atomic.Uint64
	wg      sync.WaitGroup
	once    sync.Once
	events  int // telephone-event payload type; -1 without
	onDigit func(string)
}

func listenMedia(ip net.IP) (net.PacketConn, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: 0})
	if err != nil {
		return nil, fmt.Errorf("listen rtp on %s: %w", ip, err)
	}
	return conn, nil
}

func newEchoMedia(ip net.IP) (*echoMedia, error) {
	conn, err := listenMedia(ip)
	if err != nil {
		return nil, err
	}
	return &echoMedia{conn: conn, events: -1}, nil
}

// eventKeys are the keys of RFC 4733 events 0-15.
const eventKeys = "0123456789*#ABCD"

// digit reads a telephone-event packet: the key it ends, once per event
// (by RTP timestamp), or "".
func digit(pkt []byte, lastEnded *uint32, ended *bool) string {
	if len(pkt) < rtpHeaderLen+4 || pkt[rtpHeaderLen+1]&0x80 == 0 || pkt[rtpHeaderLen] >= byte(len(eventKeys)) {
		return ""
	}
	ts := binary.BigEndian.Uint32(pkt[4:8])
	if *ended && ts == *lastEnded {
		return ""
	}
	*lastEnded, *ended = ts, true
	return string(eventKeys[pkt[rtpHeaderLen]])
}

func (m *echoMedia) port() int { return portOf(m.conn.LocalAddr()) }

// start runs the echo loop until close.
func (m *echoMedia) start() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		buf := make([]byte, maxPacketBytes)
		var lastEnded uint32
		var ended bool
		for {
			n, from, err := m.conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if !isRTP(buf[:n]) {
				continue
			}
			m.in.Add(1)
			if int(buf[1]&0x7f) == m.events && m.onDigit != nil {
				if d := digit(buf[:n], &lastEnded, &ended); d != "" {
					m.onDigit(d)
				}
			}
			if _, err := m.conn.WriteTo(buf[:n], from); err == nil {
				m.out.Add(1)
			}
		}
	}()
}

// close stops the loop and waits for it; safe to call twice.
func (m *echoMedia) close() {
	m.once.Do(func() { _ = m.conn.Close() })
	m.wg.Wait()
}

// streamMedia owns the caller's socket: a 20 ms G.711 sender and a reader
// that counts packets and latches the sender to their source.
type streamMedia struct {
	conn     net.PacketConn
	sent     atomic.Uint64
	received atomic.Uint64
	latched  atomic.Pointer[net.UDPAddr]
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

func newStreamMedia(ip net.IP) (*streamMedia, error) {
	conn, err := listenMedia(ip)
	if err != nil {
		return nil, err
	}
	return &streamMedia{conn: conn, stop: make(chan struct{})}, nil
}

func (m *streamMedia) port() int { return portOf(m.conn.LocalAddr()) }

// start sends payload type pt to remote every 20 ms and reads replies.
// It must be called at most once, before close.
func (m *streamMedia) start(remote *net.UDPAddr, pt uint8) {
	m.latched.Store(remote)
	m.wg.Add(2)
	go m.readLoop()
	go m.sendLoop(pt)
}

func (m *streamMedia) readLoop() {
	defer m.wg.Done()
	buf := make([]byte, maxPacketBytes)
	latched := false
	for {
		n, from, err := m.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !isRTP(buf[:n]) {
			continue
		}
		m.received.Add(1)
		if ua, ok := from.(*net.UDPAddr); ok && !latched {
			// Symmetric RTP (RFC 4961): answer to where the peer sends from.
			m.latched.Store(ua)
			latched = true
		}
	}
}

func (m *streamMedia) sendLoop(pt uint8) {
	defer m.wg.Done()
	var seed [10]byte
	_, _ = rand.Read(seed[:])
	hdr := rtp.Header{
		Version:        2,
		PayloadType:    pt,
		SequenceNumber: binary.BigEndian.Uint16(seed[0:2]),
		Timestamp:      binary.BigEndian.Uint32(seed[2:6]),
		SSRC:           binary.BigEndian.Uint32(seed[6:10]),
	}
	silence := byte(0xFF) // µ-law silence
	if pt == 8 {
		silence = 0xD5 // A-law silence
	}
	buf := make([]byte, rtpHeaderLen+samplesPerPacket)
	for i := rtpHeaderLen; i < len(buf); i++ {
		buf[i] = silence
	}
	ticker := time.NewTicker(packetInterval)
	defer ticker.Stop()
	first := true
	for {
		hdr.Marker = first
		first = false
		if _, err := hdr.MarshalTo(buf[:rtpHeaderLen]); err == nil {
			if _, err := m.conn.WriteTo(buf, m.latched.Load()); err == nil {
				m.sent.Add(1)
			}
		}
		hdr.SequenceNumber++
		hdr.Timestamp += samplesPerPacket
		select {
		case <-m.stop:
			return
		case <-ticker.C:
		}
	}
}

// close stops both loops and closes the socket; safe to call twice.
func (m *streamMedia) close() {
	m.once.Do(func() {
		close(m.stop)
		_ = m.conn.Close()
	})
	m.wg.Wait()
}
