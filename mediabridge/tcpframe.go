package mediabridge

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ICE-TCP carries each STUN message, DTLS record and SRTP/SRTCP packet as
// one RFC 4571 frame (RFC 6544 §3): a 16-bit big-endian length, then the
// packet. A zero length is allowed and carries nothing.

// frameHeaderLen is the RFC 4571 §2 LENGTH field.
const frameHeaderLen = 2

// maxFrame is the largest packet a browser may frame toward us: what one
// UDP datagram may carry on the shared socket. A longer frame is a peer
// fault, and its connection is closed.
const maxFrame = maxPacket

// frameOutcome is what splitFrame found at the head of a stream.
type frameOutcome int

const (
	frameUnknown  frameOutcome = iota
	frameComplete              // a whole frame: its packet and size are returned
	frameShort                 // not all of the next frame is there yet: read more
	frameTooLarge              // its length is over the limit: close the connection
)

func (o frameOutcome) String() string {
	switch o {
	case frameComplete:
		return "complete"
	case frameShort:
		return "short"
	case frameTooLarge:
		return "too_large"
	}
	return "unknown"
}

// splitFrame reads the first frame of b: the packet (a slice of b) and the
// bytes it took, header included. max is the largest packet accepted.
func splitFrame(b []byte, max int) (pkt []byte, size int, o frameOutcome) {
	if len(b) < frameHeaderLen {
		return nil, 0, frameShort
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > max {
		return nil, 0, frameTooLarge
	}
	if len(b) < frameHeaderLen+n {
		return nil, 0, frameShort
	}
	return b[frameHeaderLen : frameHeaderLen+n], frameHeaderLen + n, frameComplete
}

// putFrame writes pkt as one frame at the start of dst, which has room for
// it, and returns the frame's size.
func putFrame(dst, pkt []byte) int {
	binary.BigEndian.PutUint16(dst, uint16(len(pkt)))
	return frameHeaderLen + copy(dst[frameHeaderLen:], pkt)
}

// errFrameTooLarge closes a connection that framed a packet over maxFrame.
var errFrameTooLarge = fmt.Errorf("rfc 4571 frame over %d bytes", maxFrame)

// frameReaderBuffer holds at least one whole frame of the largest size, and
// a few small ones per read.
const frameReaderBuffer = 2048

// frameReader takes frames off a stream with one buffer of fixed size,
// whatever the peer sends: memory per connection does not grow.
type frameReader struct {
	r    io.Reader
	buf  [frameReaderBuffer]byte
	head int // the next frame starts here
	tail int // bytes read end here
}

// next returns the next frame's packet, valid until the following call.
// A frame over maxFrame gives errFrameTooLarge; the stream's end inside a
// frame gives io.ErrUnexpectedEOF, between frames io.EOF.
func (f *frameReader) next() ([]byte, error) {
	for {
		pkt, size, o := splitFrame(f.buf[f.head:f.tail], maxFrame)
		switch o {
		case frameComplete:
			f.head += size
			return pkt, nil
		case frameTooLarge:
			return nil, errFrameTooLarge
		}
		if f.head > 0 && len(f.buf)-f.head < frameHeaderLen+maxFrame {
			// Not enough room behind the partial frame for the longest
			// one: move it to the front.
			f.tail = copy(f.buf[:], f.buf[f.head:f.tail])
			f.head = 0
		}
		n, err := f.r.Read(f.buf[f.tail:])
		f.tail += n
		if n > 0 {
			continue // a Read may return data with its error; use the data first
		}
		if err == io.EOF && f.head != f.tail {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return nil, err
	}
}
