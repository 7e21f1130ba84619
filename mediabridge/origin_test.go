package mediabridge

import (
	"bytes"
	"testing"
)

func TestUnchanged(t *testing.T) {
	const base = "v=0\r\no=core 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"
	for _, tc := range []struct {
		name       string
		prev, next string
		want       bool
	}{
		{"the same description", base, base, true},
		{"same version, another address (a NAT rewrote it)", base,
			"v=0\r\no=core 1 1 IN IP4 10.0.0.9\r\ns=-\r\nm=audio 30000 RTP/AVP 0\r\n", true},
		{"LF line ends", base, "v=0\no=core 1 1 IN IP4 127.0.0.1\n", true},
		{"version incremented", base, "v=0\r\no=core 1 2 IN IP4 127.0.0.1\r\n", false},
		{"another session", base, "v=0\r\no=core 7 1 IN IP4 127.0.0.1\r\n", false},
		{"another user", base, "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\n", false},
		{"no o= line", base, "v=0\r\ns=-\r\n", false},
		{"truncated o= line", "v=0\r\no=core 1\r\n", "v=0\r\no=core 1\r\n", false},
		{"nothing before", "", base, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Unchanged([]byte(tc.prev), []byte(tc.next)); got != tc.want {
				t.Fatalf("Unchanged = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzUnchanged: any bytes; a description always repeats itself when it
// has an origin, and nothing panics.
func FuzzUnchanged(f *testing.F) {
	addSDPSeeds(f)
	f.Fuzz(func(t *testing.T, sdp []byte) {
		_, ok := origin(sdp)
		if Unchanged(sdp, sdp) != ok {
			t.Fatalf("Unchanged(x, x) = %v with origin found %v", !ok, ok)
		}
		_ = Unchanged(sdp, bytes.ToUpper(sdp))
	})
}
