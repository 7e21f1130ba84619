package load

import (
	"errors"
	"testing"
)

func TestParseSources(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "127.0.0.1", want: []string{"127.0.0.1"}},
		{name: "range", in: "127.0.0.1-127.0.0.3", want: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{name: "across an octet", in: "127.0.0.255-127.0.1.0", want: []string{"127.0.0.255", "127.0.1.0"}},
		{name: "list and range", in: "127.0.0.9, 127.0.0.1-127.0.0.2", want: []string{"127.0.0.9", "127.0.0.1", "127.0.0.2"}},
		{name: "reversed", in: "127.0.0.3-127.0.0.1", wantErr: true},
		{name: "ipv6", in: "::1", wantErr: true},
		{name: "junk", in: "localhost", wantErr: true},
		{name: "too many", in: "10.0.0.0-10.1.0.0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSources(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadFlag) {
					t.Errorf("err %v is not ErrBadFlag", err)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("[%d] = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParsePids(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"empty", "", 0, false},
		{"two", "12, 34", 2, false},
		{"zero", "0", 0, true},
		{"word", "kamailio", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePids(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != tt.want {
				t.Errorf("got %v, want %d pids", got, tt.want)
			}
		})
	}
}
