package listenpair

import (
	"net"
	"testing"
)

func TestUDPAndTCP(t *testing.T) {
	pc, ln, err := UDPAndTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	defer ln.Close()
	if pc.LocalAddr().(*net.UDPAddr).Port != ln.Addr().(*net.TCPAddr).Port {
		t.Fatalf("udp %v, tcp %v: not one port", pc.LocalAddr(), ln.Addr())
	}
	// The same fixed port again: taken, one try, an error.
	if _, _, err := UDPAndTCP(pc.LocalAddr().String()); err == nil {
		t.Fatal("bound a taken port")
	}
}
