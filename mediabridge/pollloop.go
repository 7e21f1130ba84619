package mediabridge

import (
	"net/netip"
	"time"

	"github.com/imsgate/imsgate/internal/rawudp"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// packetHandler handles one datagram read by the poll loop, from its
// source; pkt is only valid during the call. It runs on the loop, with the
// loop's scratch space.
type packetHandler func(pkt []byte, from netip.AddrPort, sc *loopScratch)

// loopScratch is what a reader of the poll loop reuses for every packet:
// the plaintext buffer, parsed headers, and the batch of datagrams toward
// browsers.
type loopScratch struct {
	plain   []byte
	pcm     [maxPacket]int16 // a tone written into G.711 audio (dtmf_path.go)
	rtpHdr  rtp.Header
	rtcpHdr rtcp.Header
	web     webBatch
	// now is when the round's packets were read: their arrival time for
	// the receivers' jitter, and the clock of the RTCP reports (qos.go).
	now time.Time
}

func newLoopScratch(web *rawudp.Socket, tcp *tcpServer) *loopScratch {
	sc := &loopScratch{plain: make([]byte, maxPacket)}
	sc.web.init(web, tcp)
	return sc
}
