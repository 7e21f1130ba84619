package siptap

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want Head
		ok   bool
	}{
		{"request", "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS x;branch=z9hG4bK1\r\nCall-ID: abc@h\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nCall-ID: body",
			Head{Method: "INVITE", CallID: "abc@h", First: "INVITE sip:bob@example.com SIP/2.0"}, true},
		{"response takes the CSeq method", "SIP/2.0 486 Busy Here\r\ni: xyz\r\nCSeq: 7  BYE \r\n\r\n",
			Head{Method: "BYE", Status: 486, CallID: "xyz", First: "SIP/2.0 486 Busy Here"}, true},
		{"bare LF", "OPTIONS sip:a SIP/2.0\ncall-id: q\n\n", Head{Method: "OPTIONS", CallID: "q", First: "OPTIONS sip:a SIP/2.0"}, true},
		{"not SIP", "GET / HTTP/1.1\r\n\r\n", Head{}, false},
		{"bad status", "SIP/2.0 99 x\r\n\r\n", Head{}, false},
		{"short status", "SIP/2.0 2", Head{}, false},
		{"empty", "", Head{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseHead([]byte(tc.raw))
			if ok != tc.ok || got != tc.want {
				t.Errorf("ParseHead = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nCall-ID: a\r\n\r\n"))
	f.Add([]byte("BYE sip:x SIP/2.0\r\ni: b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, ok := ParseHead(raw)
		if ok && h.Method == "" && h.Status == 0 {
			t.Fatalf("a head with neither method nor status: %+v", h)
		}
	})
}

// TestStreams: TCP reads as they came, split and joined, give back the
// messages; keepalives and a connection's excess are dropped.
func TestStreams(t *testing.T) {
	a := "INVITE sip:a SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 4\r\n\r\nv=0\n"
	b := "SIP/2.0 200 OK\r\nl: 0\r\n\r\n"
	c := "BYE sip:a SIP/2.0\nCall-ID: 2\n\n"
	var s streams
	now := time.Now()
	var got []string
	for _, chunk := range []string{a[:10], a[10:40], a[40:] + "\r\n\r\n" + b, c[:5], c[5:]} {
		for _, m := range s.feed("conn", []byte(chunk), now) {
			got = append(got, string(m))
		}
	}
	if want := []string{a, b, c}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages %q, want %q", got, want)
	}
	if len(s.bufs) != 0 {
		t.Errorf("%d connections still followed with nothing waiting", len(s.bufs))
	}
	// A head that never ends is dropped past the bound.
	for range 3 * maxStreamBuf / 1024 {
		s.feed("flood", bytes.Repeat([]byte("x"), 1024), now)
		if st := s.bufs["flood"]; st != nil && len(st.buf) > maxStreamBuf {
			t.Fatalf("%d bytes buffered", len(st.buf))
		}
	}
}

func FuzzStreams(f *testing.F) {
	f.Add([]byte("INVITE sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nab"), 7)
	f.Add([]byte("\r\n\r\nSIP/2.0 200 OK\r\nl: x\r\n\r\n"), 3)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		var s streams
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		total := 0
		for _, chunk := range [][]byte{data[:cut], data[cut:]} {
			for _, m := range s.feed("c", chunk, time.Now()) {
				total += len(m)
			}
		}
		if total > len(data) {
			t.Fatalf("%d bytes of messages from %d read", total, len(data))
		}
	})
}
