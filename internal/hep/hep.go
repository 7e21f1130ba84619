// Package hep exports what the gateway sees to a HEP v3 collector (Homer,
// sngrep): every SIP message of both legs with its real addresses and
// transport (the WebSocket leg's as TCP), and at each call's end a JSON
// quality report per leg, correlated to that leg's Call-ID. Packets go over
// UDP from a queue of their own, so a slow or absent collector costs the
// call paths nothing: past the queue's bound packets are dropped and
// counted.
package hep

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/siptap"
)

// HEP v3 chunk types of the generic vendor (0), and the payload types used.
const (
	chunkFamily    = 1
	chunkProto     = 2
	chunkSrcIPv4   = 3
	chunkDstIPv4   = 4
	chunkSrcIPv6   = 5
	chunkDstIPv6   = 6
	chunkSrcPort   = 7
	chunkDstPort   = 8
	chunkTimeSec   = 9
	chunkTimeUsec  = 10
	chunkProtoType = 11
	chunkAgentID   = 12
	chunkAuthKey   = 14
	chunkPayload   = 15
	chunkCorrelate = 17

	protoSIP      = 1
	protoQoSJSON  = 34 // a JSON quality report, as RTP agents send
	familyIPv4    = 2
	familyIPv6    = 10
	ipProtoTCP    = 6
	ipProtoUDP    = 17
	queueSize     = 4096
	maxPacketSize = 65507
)

// packet is one HEP packet's fields.
type packet struct {
	at          time.Time
	src, dst    netip.AddrPort
	ipProto     uint8
	protoType   uint8
	correlation string
	payload     []byte
}

// encode writes p as a HEP v3 packet: the "HEP3" header and its chunks.
func encode(p packet, agentID uint32, password string) []byte {
	b := make([]byte, 6, 6+120+len(p.payload)+len(password)+len(p.correlation))
	copy(b, "HEP3")
	u8 := func(t uint16, v uint8) { b = appendChunk(b, t, []byte{v}) }
	u16 := func(t uint16, v uint16) { b = appendChunk(b, t, binary.BigEndian.AppendUint16(nil, v)) }
	u32 := func(t uint16, v uint32) { b = appendChunk(b, t, binary.BigEndian.AppendUint32(nil, v)) }
	src, dst := p.src.Addr().Unmap(), p.dst.Addr().Unmap()
	if src.Is4() && dst.Is4() {
		u8(chunkFamily, familyIPv4)
		s, d := src.As4(), dst.As4()
		b = appendChunk(b, chunkSrcIPv4, s[:])
		b = appendChunk(b, chunkDstIPv4, d[:])
	} else {
		u8(chunkFamily, familyIPv6)
		s, d := src.As16(), dst.As16()
		b = appendChunk(b, chunkSrcIPv6, s[:])
		b = appendChunk(b, chunkDstIPv6, d[:])
	}
	u8(chunkProto, p.ipProto)
	u16(chunkSrcPort, p.src.Port())
	u16(chunkDstPort, p.dst.Port())
	u32(chunkTimeSec, uint32(p.at.Unix()))
	u32(chunkTimeUsec, uint32(p.at.Nanosecond()/1000))
	u8(chunkProtoType, p.protoType)
	u32(chunkAgentID, agentID)
	if password != "" {
		b = appendChunk(b, chunkAuthKey, []byte(password))
	}
	if p.correlation != "" {
		b = appendChunk(b, chunkCorrelate, []byte(p.correlation))
	}
	b = appendChunk(b, chunkPayload, p.payload)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	return b
}

func appendChunk(b []byte, typ uint16, value []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0) // vendor: generic
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(6+len(value)))
	return append(b, value...)
}

// Exporter sends HEP packets to the collector. It is a siptap.Sink and a
// b2bua.Observer (quality.go).
type Exporter struct {
	cfg   configs.HEP
	conn  *net.UDPConn
	log   *zap.Logger
	queue chan []byte
	done  chan struct{}
	// mu guards closed: a message tapped after Close (a connection's
	// writer finishing late) is dropped, not sent on a closed queue.
	mu     sync.RWMutex
	closed bool
	// Sent and Dropped count packets: dropped when the queue was full or
	// the packet too large for a datagram.
	Sent, Dropped atomic.Uint64
}

// New opens the exporter toward cfg.Address.
func New(cfg configs.HEP, log *zap.Logger) (*Exporter, error) {
	raddr, err := net.ResolveUDPAddr("udp", cfg.Address)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, err
	}
	e := &Exporter{cfg: cfg, conn: conn, log: log, queue: make(chan []byte, queueSize), done: make(chan struct{})}
	go e.send()
	log.Info("hep export", zap.String("address", cfg.Address), zap.Uint32("id", cfg.ID))
	return e, nil
}

func (e *Exporter) send() {
	defer close(e.done)
	for b := range e.queue {
		// A collector not listening answers with ICMP: the next write
		// fails and the packet is lost, as any UDP export's would be.
		if _, err := e.conn.Write(b); err != nil {
			e.Dropped.Add(1)
			continue
		}
		e.Sent.Add(1)
	}
}

// enqueue hands a packet to the sender, or drops it when the queue is full.
func (e *Exporter) enqueue(p packet) {
	b := encode(p, e.cfg.ID, e.cfg.Password)
	if len(b) > maxPacketSize {
		e.Dropped.Add(1)
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.Dropped.Add(1)
		return
	}
	select {
	case e.queue <- b:
	default:
		e.Dropped.Add(1)
	}
}

// SIPMessage exports one SIP message, from its sender to its receiver.
func (e *Exporter) SIPMessage(m *siptap.Message) {
	// encode copies the payload into the packet before this returns.
	p := packet{at: m.At, src: m.Remote, dst: m.Local, ipProto: ipProtoTCP, protoType: protoSIP, payload: m.Raw}
	if m.Dir == siptap.Out {
		p.src, p.dst = m.Local, m.Remote
	}
	if m.Transport == "UDP" {
		p.ipProto = ipProtoUDP
	}
	e.enqueue(p)
}

// Close stops the sender once the queue is sent; what comes after it is
// dropped.
func (e *Exporter) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.queue)
	e.mu.Unlock()
	<-e.done
	_ = e.conn.Close()
}
