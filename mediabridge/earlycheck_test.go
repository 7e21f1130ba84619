package mediabridge

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func bindingRequest(t *testing.T, username, pwd string) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(username),
		stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

type readResult struct {
	data []byte
	err  error
}

func TestEarlyCheckReplayedAfterAnswer(t *testing.T) {
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conn := newEarlyCheckConn(sock)
	defer conn.Close()
	peer, err := net.DialUDP("udp", nil, sock.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	reads := make(chan readResult, 8)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFromAddrPort(buf)
			reads <- readResult{append([]byte(nil), buf[:n]...), err}
			if err != nil {
				return
			}
		}
	}()
	next := func() []byte {
		t.Helper()
		select {
		case r := <-reads:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.data
		case <-time.After(2 * time.Second):
			t.Fatal("nothing read")
		}
		return nil
	}

	conn.await("gw1", "pwd")
	early := bindingRequest(t, "gw1:browser", "pwd")
	forged := bindingRequest(t, "gw1:browser", "guess")
	other := bindingRequest(t, "zzz:browser", "pwd")
	for _, p := range [][]byte{early, forged, other, {0x80, 0, 0, 1}} {
		if _, err := peer.Write(p); err != nil {
			t.Fatal(err)
		}
		if got := next(); string(got) != string(p) {
			t.Fatal("every packet still goes to pion as it arrives")
		}
	}
	// Only the check signed with our password was answered, at once.
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, err := peer.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil || res.Type != stun.BindingSuccess || stun.NewShortTermIntegrity("pwd").Check(res) != nil {
		t.Fatalf("early check answer: %v %v", res.Type, err)
	}
	peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := peer.Read(buf); err == nil {
		t.Fatal("a check with a wrong MESSAGE-INTEGRITY must not be answered")
	}
	conn.release("gw1", true)
	if got := next(); string(got) != string(early) {
		t.Fatal("the early check of the waiting session is read again after release")
	}
	conn.release("gw1", true) // nothing held any more
	if conn.waitingN.Load() != 0 {
		t.Fatal("no session waits")
	}
	// Once nothing waits, the wake-up leaves the socket readable as before.
	if _, err := peer.Write([]byte{0x80, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got[3] != 2 {
		t.Fatalf("read %v", got)
	}
	conn.Close()
	select {
	case r := <-reads:
		if r.err == nil {
			t.Fatal("read after close should fail")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("reader did not stop")
	}
}
