package mediabridge

import (
	"fmt"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// srtpReplayWindow is the SRTP/SRTCP replay window in packets (RFC 3711
// §3.3.2 asks for at least 64).
const srtpReplayWindow = 64

// useContexts hands both contexts to the poll loop, the inbound one for the
// shared socket's packets and the outbound one for the core's: from here on
// media flows.
func (ep *webEndpoint) useContexts(in, out *srtp.Context) {
	ep.in.Store(in)
	ep.fwd.webOut.Store(&webSender{ep: ep, ctx: out})
}

// receiveMedia runs on the poll loop for a packet from one of this
// session's addresses: SRTCP is decrypted and read (qos.go), SRTP decrypted
// and forwarded to the core.
func (ep *webEndpoint) receiveMedia(pkt []byte, in *loopScratch) {
	ctx := ep.in.Load()
	if ctx == nil {
		ep.fwd.dropped.Add(1)
		return
	}
	// RFC 5761 §4: RTCP packet types 192-223 share the port with RTP.
	if len(pkt) > 1 && pkt[1] >= 192 && pkt[1] <= 223 {
		if plain, err := ctx.DecryptRTCP(in.plain[:0], pkt, &in.rtcpHdr); err == nil {
			ep.rtcpFromWeb.Add(1)
			ep.fwd.webRTCP(plain, ep.ssrc, in)
		}
		return
	}
	plain, err := ctx.DecryptRTP(in.plain[:0], pkt, &in.rtpHdr)
	if err != nil {
		ep.fwd.dropped.Add(1)
		return
	}
	ep.fwd.webToCore(plain[:cap(plain)], len(plain), in)
	ep.fwd.reportDue(in)
}

// srtpOverhead is the room EncryptRTP needs beyond the packet: the longest
// auth tag (16 bytes for AEAD-GCM).
const srtpOverhead = 16

// webSender encrypts core audio for the browser. It is used only on the
// poll loop (the core RTP socket's handler), which owns the context.
type webSender struct {
	ep  *webEndpoint
	ctx *srtp.Context
	hdr rtp.Header
}

// send encrypts one plain RTP packet (payload type already mapped) into the
// round's batch toward browsers, for the browser's address.
func (w *webSender) send(pkt []byte, sc *loopScratch) error {
	addr, ok := w.ep.remoteAddr()
	if !ok {
		return errNoBrowserAddr
	}
	pkt[8] = byte(w.ep.ssrc >> 24)
	pkt[9] = byte(w.ep.ssrc >> 16)
	pkt[10] = byte(w.ep.ssrc >> 8)
	pkt[11] = byte(w.ep.ssrc)
	out, err := w.ctx.EncryptRTP(sc.web.slot(), pkt, &w.hdr)
	if err != nil {
		return fmt.Errorf("encrypt rtp: %w", err)
	}
	return sc.web.commit(len(out), addr)
}
