package siptap

import "testing"

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
