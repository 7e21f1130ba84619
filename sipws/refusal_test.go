package sipws

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// testAddr is the i-th address of 10.0.0.0/8.
func testAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestRefusalLogOncePerWindow(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	l := newRefusalLog(time.Minute)
	steps := []struct {
		kind refusalKind
		ip   netip.Addr
		at   time.Duration
		warn bool
	}{
		{kind: refusalRequestRate, ip: a, at: 0, warn: true},
		{kind: refusalRequestRate, ip: a, at: 30 * time.Second},
		{kind: refusalSDPTooLarge, ip: a, at: 30 * time.Second, warn: true},
		{kind: refusalRequestRate, ip: b, at: 30 * time.Second, warn: true},
		{kind: refusalRequestRate, ip: a, at: 59 * time.Second},
		{kind: refusalRequestRate, ip: a, at: time.Minute, warn: true},
	}
	for i, st := range steps {
		if got := l.note(st.kind, st.ip, t0.Add(st.at)); got != st.warn {
			t.Errorf("step %d: note = %v, want %v", i, got, st.warn)
		}
	}
	got := l.snapshot()
	if got["request_rate"] != 5 || got["sdp_too_large"] != 1 || got["conns_per_ip"] != 0 {
		t.Errorf("counts %v", got)
	}
	if len(got) != int(refusalKinds)-1 {
		t.Errorf("snapshot has %d kinds, want every one", len(got))
	}
}

// TestRefusalLogBounded: a flood of sources fills the table to its cap and
// no further; their refusals are still counted, and the window frees room.
func TestRefusalLogBounded(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newRefusalLog(time.Minute)
	for i := range refusalLogSources {
		if !l.note(refusalConnsPerIP, testAddr(i), t0) {
			t.Fatalf("source %d not logged with room left", i)
		}
	}
	if l.note(refusalConnsPerIP, testAddr(refusalLogSources), t0.Add(time.Second)) {
		t.Error("a new source logged at Warn with the table full")
	}
	if n := len(l.logged); n != refusalLogSources {
		t.Errorf("table holds %d, want %d", n, refusalLogSources)
	}
	if !l.note(refusalConnsPerIP, testAddr(refusalLogSources), t0.Add(time.Minute)) {
		t.Error("a new source not logged once the window has passed")
	}
	if n := len(l.logged); n != 1 {
		t.Errorf("table holds %d after the sweep, want 1", n)
	}
	if n := l.snapshot()["conns_per_ip"]; n != refusalLogSources+2 {
		t.Errorf("counted %d, want %d", n, refusalLogSources+2)
	}
}

// TestRefusalsLoggedOncePerSource: refusals of one kind from one source
// log one Warn per window, the rest at Debug.
func TestRefusalsLoggedOncePerSource(t *testing.T) {
	core, logs := observerCore()
	lim := roomyLimits()
	lim.RequestsPerConn = 1
	ts := startServerWithLog(t, testConfig(), zap.New(core), WithLimits(lim), withClock(newFakeClock().now))
	answerRequests(ts)
	for range 2 {
		ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
		for _, id := range []string{"a", "b", "c", "d"} {
			send(t, ws, websocket.TextMessage, optionsMsg(id))
		}
		expectStatus(t, ws, "a", 200)
		expectStatus(t, ws, "b", 200)
		expectStatus(t, ws, "c", 503)
		expectStatus(t, ws, "d", 503)
	}
	refused := logs.FilterMessage("SIP request refused")
	if n := refused.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d refusals at Warn, want 1 for one source", n)
	}
	if n := refused.FilterLevelExact(zapcore.DebugLevel).Len(); n != 3 {
		t.Errorf("%d refusals at Debug, want 3", n)
	}
	if n := ts.srv.Refusals()["request_rate"]; n != 4 {
		t.Errorf("request_rate = %d, want 4", n)
	}
}
