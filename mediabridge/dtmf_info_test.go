package mediabridge

import (
	"errors"
	"testing"
	"time"
)

func TestParseDTMFInfo(t *testing.T) {
	const relay = "application/dtmf-relay"
	ms := time.Millisecond
	tests := []struct {
		name        string
		contentType string
		body        string
		want        DTMFDigit
		err         error
	}{
		{"relay crlf", relay, "Signal=5\r\nDuration=160\r\n", DTMFDigit{5, 160 * ms}, nil},
		{"relay lf only", relay, "Signal=9\nDuration=250\n", DTMFDigit{9, 250 * ms}, nil},
		{"keys any case", relay, "signal=1\r\nDURATION=200\r\n", DTMFDigit{1, 200 * ms}, nil},
		{"spaces around", relay, "  Signal = # \r\n Duration= 120 \r\n", DTMFDigit{11, 120 * ms}, nil},
		{"star", relay, "Signal=*\r\nDuration=100\r\n", DTMFDigit{10, 100 * ms}, nil},
		{"A", relay, "Signal=A\r\n", DTMFDigit{12, 100 * ms}, nil},
		{"d lower", relay, "Signal=d\r\n", DTMFDigit{15, 100 * ms}, nil},
		{"flash 16", relay, "Signal=16\r\nDuration=500\r\n", DTMFDigit{16, 500 * ms}, nil},
		{"flash bang", relay, "Signal=!\r\n", DTMFDigit{16, 100 * ms}, nil},
		{"numeric star", relay, "Signal=10\r\n", DTMFDigit{10, 100 * ms}, nil},
		{"zero", relay, "Signal=0\r\nDuration=100", DTMFDigit{0, 100 * ms}, nil},
		{"no final newline", relay, "Signal=7\r\nDuration=90", DTMFDigit{7, 90 * ms}, nil},
		{"duration missing", relay, "Signal=3\r\n", DTMFDigit{3, 100 * ms}, nil},
		{"duration garbage", relay, "Signal=3\r\nDuration=abc\r\n", DTMFDigit{3, 100 * ms}, nil},
		{"duration negative", relay, "Signal=3\r\nDuration=-5\r\n", DTMFDigit{3, 100 * ms}, nil},
		{"duration empty", relay, "Signal=3\r\nDuration=\r\n", DTMFDigit{3, 100 * ms}, nil},
		{"duration zero is unsaid", relay, "Signal=3\r\nDuration=0\r\n", DTMFDigit{3, 100 * ms}, nil},
		{"duration short clamped", relay, "Signal=3\r\nDuration=10\r\n", DTMFDigit{3, 40 * ms}, nil},
		{"duration long clamped", relay, "Signal=3\r\nDuration=60000\r\n", DTMFDigit{3, 2 * time.Second}, nil},
		{"duration huge clamped", relay, "Signal=3\r\nDuration=99999999999999999999999\r\n", DTMFDigit{3, 2 * time.Second}, nil},
		{"duration first", relay, "Duration=300\r\nSignal=2\r\n", DTMFDigit{2, 300 * ms}, nil},
		{"first signal wins", relay, "Signal=2\r\nSignal=x\r\n", DTMFDigit{2, 100 * ms}, nil},
		{"other keys ignored", relay, "Foo=bar\r\nSignal=4\r\nnoise\r\n", DTMFDigit{4, 100 * ms}, nil},
		{"type params and case", "Application/DTMF-Relay; charset=utf-8", "Signal=6\r\n", DTMFDigit{6, 100 * ms}, nil},
		{"dtmf digit", "application/dtmf", "8", DTMFDigit{8, 100 * ms}, nil},
		{"dtmf digit crlf", "application/dtmf", " #\r\n", DTMFDigit{11, 100 * ms}, nil},
		{"dtmf flash", "application/dtmf", "16", DTMFDigit{16, 100 * ms}, nil},

		{"no signal", relay, "Duration=100\r\n", DTMFDigit{}, ErrBadDTMF},
		{"empty body", relay, "", DTMFDigit{}, ErrBadDTMF},
		{"unknown signal", relay, "Signal=E\r\n", DTMFDigit{}, ErrBadDTMF},
		{"event 17", relay, "Signal=17\r\n", DTMFDigit{}, ErrBadDTMF},
		{"three digits", relay, "Signal=100\r\n", DTMFDigit{}, ErrBadDTMF},
		{"empty signal", relay, "Signal=\r\n", DTMFDigit{}, ErrBadDTMF},
		{"two signals one line", relay, "Signal=12 3\r\n", DTMFDigit{}, ErrBadDTMF},
		{"dtmf empty", "application/dtmf", "\r\n", DTMFDigit{}, ErrBadDTMF},
		{"dtmf relay body", "application/dtmf", "Signal=5", DTMFDigit{}, ErrBadDTMF},
		{"other type", "application/media_control+xml", "<x/>", DTMFDigit{}, ErrNotDTMF},
		{"no type", "", "Signal=5", DTMFDigit{}, ErrNotDTMF},
		{"type prefix only", "application/dtmf-relayx", "Signal=5", DTMFDigit{}, ErrNotDTMF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDTMFInfo(tt.contentType, []byte(tt.body))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDTMFInfoBody(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		digit DTMFDigit
		want  string
	}{
		{"digit", DTMFDigit{5, 160 * ms}, "Signal=5\r\nDuration=160\r\n"},
		{"star", DTMFDigit{10, 100 * ms}, "Signal=*\r\nDuration=100\r\n"},
		{"hash", DTMFDigit{11, 250 * ms}, "Signal=#\r\nDuration=250\r\n"},
		{"D", DTMFDigit{15, 100 * ms}, "Signal=D\r\nDuration=100\r\n"},
		{"flash", DTMFDigit{16, 500 * ms}, "Signal=16\r\nDuration=500\r\n"},
		{"zero duration defaults", DTMFDigit{1, 0}, "Signal=1\r\nDuration=100\r\n"},
		{"short clamped", DTMFDigit{1, 5 * ms}, "Signal=1\r\nDuration=40\r\n"},
		{"long clamped", DTMFDigit{1, time.Minute}, "Signal=1\r\nDuration=2000\r\n"},
		{"sub-millisecond truncated", DTMFDigit{1, 123456 * time.Microsecond}, "Signal=1\r\nDuration=123\r\n"},
		{"not dtmf", DTMFDigit{17, 100 * ms}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.digit.InfoBody()); got != tt.want {
				t.Errorf("InfoBody = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDTMFSignal(t *testing.T) {
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "A", "B", "C", "D", "16", "", ""}
	for ev, sig := range want {
		d := DTMFDigit{Event: uint8(ev), Duration: 300 * time.Millisecond}
		if got := d.Signal(); got != sig {
			t.Errorf("event %d: Signal = %q, want %q", ev, got, sig)
		}
		if sig == "" {
			continue
		}
		// Round trip through both body types.
		back, err := ParseDTMFInfo(DTMFRelayType, d.InfoBody())
		if err != nil || back != d {
			t.Errorf("event %d: relay round trip = %+v, %v", ev, back, err)
		}
		back, err = ParseDTMFInfo("application/dtmf", []byte(sig))
		if err != nil || back.Event != d.Event {
			t.Errorf("event %d: dtmf round trip = %+v, %v", ev, back, err)
		}
	}
}
