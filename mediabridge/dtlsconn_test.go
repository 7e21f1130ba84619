package mediabridge

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestDTLSPacketConn(t *testing.T) {
	remote := netip.MustParseAddrPort("127.0.0.1:5000")
	tests := []struct {
		name    string
		prepare func(c *dtlsPacketConn)
		wantErr error
		want    string
	}{
		{name: "delivered record is read", prepare: func(c *dtlsPacketConn) { c.deliver([]byte{22, 1}) }, want: "\x16\x01"},
		{name: "past deadline times out", prepare: func(c *dtlsPacketConn) { _ = c.SetReadDeadline(time.Now().Add(-time.Second)) }, wantErr: os.ErrDeadlineExceeded},
		{name: "close ends a read", prepare: func(c *dtlsPacketConn) { _ = c.Close() }, wantErr: net.ErrClosed},
		{name: "a deadline set while blocked wakes the read", prepare: func(c *dtlsPacketConn) {
			go func() { _ = c.SetReadDeadline(time.Now().Add(-time.Second)) }()
		}, wantErr: os.ErrDeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newDTLSPacketConn(nil, func() (netip.AddrPort, bool) { return remote, true })
			tt.prepare(c)
			done := make(chan error, 1)
			buf := make([]byte, 16)
			var n int
			go func() {
				var err error
				n, _, err = c.ReadFrom(buf)
				done <- err
			}()
			err := waitChan(t, "read", done)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && string(buf[:n]) != tt.want {
				t.Errorf("read %q, want %q", buf[:n], tt.want)
			}
			_ = c.Close()
			if c.deliver([]byte{22}) {
				t.Errorf("delivered to a closed conn")
			}
		})
	}
}
