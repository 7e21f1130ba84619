package mediabridge

import (
	"errors"
	"net/netip"
	"testing"
)

func TestPortAllocator(t *testing.T) {
	tests := []struct {
		name      string
		lo, hi    int
		wantPorts []int
	}{
		{name: "even start", lo: 41900, hi: 41903, wantPorts: []int{41900, 41902}},
		{name: "odd start rounds up", lo: 41905, hi: 41909, wantPorts: []int{41906, 41908}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newPortAllocator(netip.MustParseAddr("127.0.0.1"), tt.lo, tt.hi)
			var pairs []*portPair
			for _, want := range tt.wantPorts {
				p, err := a.allocate()
				if err != nil {
					t.Fatalf("allocate: %v", err)
				}
				if p.port != want || p.port%2 != 0 {
					t.Errorf("port %d, want %d", p.port, want)
				}
				pairs = append(pairs, p)
			}
			if _, err := a.allocate(); !errors.Is(err, errPortsExhausted) {
				t.Errorf("allocate past the range: %v", err)
			}
			if err := a.release(pairs[0]); err != nil {
				t.Fatalf("release: %v", err)
			}
			p, err := a.allocate()
			if err != nil || p.port != tt.wantPorts[0] {
				t.Fatalf("reallocate = %v, %v", p, err)
			}
			pairs[0] = p
			for _, p := range pairs {
				if err := a.release(p); err != nil {
					t.Errorf("release: %v", err)
				}
			}
		})
	}
}
