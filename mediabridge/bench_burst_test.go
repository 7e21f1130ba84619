package mediabridge

import (
	"testing"
	"time"
)

// burstSize is how many packets the burst benchmarks send back to back per
// op, so they queue at the gateway's socket as they do under load when many
// calls' packets arrive together. The figure per packet is cpu-ns/pkt.
const burstSize = 32

// BenchmarkSRTPToRTPBurst: a raw browser socket sends burstSize SRTP
// packets (encrypted ahead, off the clock) back to back; the poll loop takes
// what is queued, decrypts, maps and writes each to the
// core socket, which then reads all of them.
func BenchmarkSRTPToRTPBurst(b *testing.B) {
	call := newRawCall(b)
	pool := newEncryptedPool(b, call.toGW, 4096) // a multiple of burstSize: refills fall between ops
	rbuf := make([]byte, maxPacket)
	dl := keepDeadline{d: call.core}
	b.SetBytes(int64(burstSize * len(g711Packet(0))))
	b.ReportAllocs()
	reads0 := call.session.engine.loop.reads.Load()
	cpu := startCPU()
	start := time.Now()
	for b.Loop() {
		dl.tick()
		for range burstSize {
			if _, err := call.browser.WriteToUDPAddrPort(pool.take(b), call.gwWeb); err != nil {
				b.Fatalf("browser write: %v", err)
			}
		}
		for range burstSize {
			if _, _, err := call.core.ReadFromUDPAddrPort(rbuf); err != nil {
				b.Fatalf("core read: %v (stats %+v, unknown %d)", err, call.session.Stats(), call.session.engine.sock.unknown.Load())
			}
		}
	}
	cpu.reportPacket(b, burstSize, time.Since(start))
	b.StopTimer()
	if reads := call.session.engine.loop.reads.Load() - reads0; reads > 0 {
		b.ReportMetric(float64(b.N*burstSize)/float64(reads), "pkts/read")
	}
	if st := call.session.Stats(); st.Dropped != 0 {
		b.Errorf("dropped %d", st.Dropped)
	}
}

// BenchmarkRTPToSRTPBurst: the core socket sends burstSize RTP packets back
// to back to the session's core port; the session maps, encrypts and writes
// each to the raw browser socket, which then reads all of them.
func BenchmarkRTPToSRTPBurst(b *testing.B) {
	call := newRawCall(b)
	pkt := g711Packet(96)
	rbuf := make([]byte, maxPacket)
	seq := uint16(0)
	dl := keepDeadline{d: call.browser}
	b.SetBytes(int64(burstSize * len(pkt)))
	b.ReportAllocs()
	cpu := startCPU()
	start := time.Now()
	for b.Loop() {
		dl.tick()
		for range burstSize {
			seq++
			setSeq(pkt, seq)
			if _, err := call.core.WriteToUDPAddrPort(pkt, call.gwRTP); err != nil {
				b.Fatalf("core write: %v", err)
			}
		}
		for range burstSize {
			if _, _, err := call.browser.ReadFromUDPAddrPort(rbuf); err != nil {
				b.Fatalf("browser read: %v (stats %+v)", err, call.session.Stats())
			}
		}
	}
	cpu.reportPacket(b, burstSize, time.Since(start))
	b.StopTimer()
	if st := call.session.Stats(); st.Dropped != 0 {
		b.Errorf("dropped %d", st.Dropped)
	}
}
