package hostkey

import (
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	} {
		if got := Of(netip.MustParseAddr(tc.ip)); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Of(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
	if Of(netip.Addr{}).IsValid() {
		t.Error("the zero address has a host range")
	}
}
