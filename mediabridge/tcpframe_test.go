package mediabridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// frame is pkt with its RFC 4571 header.
func frame(pkt []byte) []byte {
	b := make([]byte, frameHeaderLen+len(pkt))
	putFrame(b, pkt)
	return b
}

func TestSplitFrame(t *testing.T) {
	big := bytes.Repeat([]byte{0x80}, maxFrame)
	tests := []struct {
		name     string
		in       []byte
		wantPkt  []byte
		wantSize int
		want     frameOutcome
	}{
		{name: "empty stream", in: nil, want: frameShort},
		{name: "half a header", in: []byte{0}, want: frameShort},
		{name: "header without its packet", in: []byte{0, 3, 1, 2}, want: frameShort},
		{name: "zero-length frame", in: []byte{0, 0, 9}, wantPkt: []byte{}, wantSize: 2, want: frameComplete},
		{name: "one frame", in: []byte{0, 3, 1, 2, 3}, wantPkt: []byte{1, 2, 3}, wantSize: 5, want: frameComplete},
		{name: "first of two frames", in: []byte{0, 1, 7, 0, 1, 8}, wantPkt: []byte{7}, wantSize: 3, want: frameComplete},
		{name: "largest frame", in: frame(big), wantPkt: big, wantSize: frameHeaderLen + maxFrame, want: frameComplete},
		{name: "one byte over the largest", in: []byte{(maxFrame + 1) >> 8, (maxFrame + 1) & 0xff}, want: frameTooLarge},
		{name: "largest length field", in: []byte{0xff, 0xff}, want: frameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, size, o := splitFrame(tt.in, maxFrame)
			if o != tt.want || size != tt.wantSize || !bytes.Equal(pkt, tt.wantPkt) {
				t.Errorf("splitFrame = %d bytes, size %d, %v; want %d bytes, size %d, %v", len(pkt), size, o, len(tt.wantPkt), tt.wantSize, tt.want)
			}
		})
	}
}

func TestPutFrame(t *testing.T) {
	dst := make([]byte, frameHeaderLen+maxPacket+srtpOverhead)
	for _, n := range []int{0, 1, 20, 1516} {
		pkt := bytes.Repeat([]byte{0xab}, n)
		size := putFrame(dst, pkt)
		if size != frameHeaderLen+n || int(binary.BigEndian.Uint16(dst)) != n || !bytes.Equal(dst[2:size], pkt) {
			t.Errorf("putFrame(%d bytes) = %d, header %x", n, size, dst[:2])
		}
	}
}

// chunkReader returns its stream in pieces of the sizes in chunks, in turn
// (a zero stands for one byte), as TCP segments come.
type chunkReader struct {
	stream []byte
	chunks []byte
	i      int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.stream) == 0 {
		return 0, io.EOF
	}
	n := 1500
	if len(r.chunks) > 0 {
		n = max(int(r.chunks[r.i%len(r.chunks)]), 1)
		r.i++
	}
	n = min(n, len(p), len(r.stream))
	copy(p, r.stream[:n])
	r.stream = r.stream[n:]
	return n, nil
}

func TestFrameReader(t *testing.T) {
	stun := frame(bytes.Repeat([]byte{0x00}, 20))
	dtls := frame(bytes.Repeat([]byte{0x16}, 1200))
	rtp := frame(bytes.Repeat([]byte{0x80}, 172))
	largest := frame(bytes.Repeat([]byte{0x90}, maxFrame))
	stream := bytes.Join([][]byte{stun, dtls, rtp, {0, 0}, largest, rtp, largest}, nil)
	tests := []struct {
		name    string
		stream  []byte
		chunks  []byte
		want    int // frames
		wantErr error
	}{
		{name: "whole segments", stream: stream, want: 7, wantErr: io.EOF},
		{name: "a byte at a time", stream: stream, chunks: []byte{1}, want: 7, wantErr: io.EOF},
		{name: "odd segments", stream: stream, chunks: []byte{3, 250, 7, 255, 1}, want: 7, wantErr: io.EOF},
		{name: "end inside a header", stream: append(bytes.Clone(rtp), 0), want: 1, wantErr: io.ErrUnexpectedEOF},
		{name: "end inside a packet", stream: rtp[:100], want: 0, wantErr: io.ErrUnexpectedEOF},
		{name: "too large after a good one", stream: append(bytes.Clone(stun), 0x05, 0xdd), want: 1, wantErr: errFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := frameReader{r: &chunkReader{stream: tt.stream, chunks: tt.chunks}}
			got := 0
			for {
				_, err := fr.next()
				if err != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("error %v, want %v", err, tt.wantErr)
					}
					break
				}
				got++
			}
			if got != tt.want {
				t.Errorf("%d frames, want %d", got, tt.want)
			}
		})
	}
}

// FuzzTCPFrames reads an arbitrary byte stream, cut into arbitrary TCP
// segments, as an ICE-TCP connection does. Nothing may panic; the frames
// read are those splitFrame finds in the whole stream, each at most
// maxFrame, and framed again they give back the stream up to where reading
// stopped, which is where the stream ends or a frame is too large.
func FuzzTCPFrames(f *testing.F) {
	for _, seed := range tcpFrameSeeds() {
		f.Add(seed, []byte{})
		f.Add(seed, []byte{1})
		f.Add(seed, []byte{2, 200, 3})
	}
	f.Fuzz(func(t *testing.T, stream, chunks []byte) {
		fr := frameReader{r: &chunkReader{stream: stream, chunks: chunks}}
		var again []byte
		var err error
		for {
			var pkt []byte
			if pkt, err = fr.next(); err != nil {
				break
			}
			if len(pkt) > maxFrame {
				t.Fatalf("frame of %d bytes", len(pkt))
			}
			again = append(again, frame(pkt)...)
		}
		if !bytes.HasPrefix(stream, again) {
			t.Fatalf("frames framed again are not the stream's start")
		}
		rest := stream[len(again):]
		_, _, o := splitFrame(rest, maxFrame)
		switch {
		case len(rest) == 0:
			if err != io.EOF {
				t.Fatalf("at the stream's end: %v, want EOF", err)
			}
		case o == frameTooLarge:
			if !errors.Is(err, errFrameTooLarge) {
				t.Fatalf("before a frame too large: %v", err)
			}
		case o == frameShort:
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("inside the last frame: %v, want unexpected EOF", err)
			}
		default:
			t.Fatalf("reading stopped before a whole frame (%v)", err)
		}
	})
}

// tcpFrameSeeds are streams as a browser sends them on ICE-TCP: a STUN
// check, a DTLS record and SRTP in frames, and broken ones.
func tcpFrameSeeds() [][]byte {
	check := frame(append([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, bytes.Repeat([]byte{7}, 12)...))
	dtls := frame(append([]byte{0x16, 0xfe, 0xfd}, bytes.Repeat([]byte{1}, 120)...))
	srtp := frame(append([]byte{0x80, 0x6f, 0x00, 0x01}, bytes.Repeat([]byte{2}, 184)...))
	return [][]byte{
		bytes.Join([][]byte{check, dtls, srtp, srtp}, nil),
		{0, 0, 0, 0},
		frame(bytes.Repeat([]byte{0x80}, maxFrame)),
		{0x05, 0xdd, 0x80},
		{0xff, 0xff},
		srtp[:50],
	}
}
