package turnserver

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
)

var zapNop = zap.NewNop()

func TestWarnLimiter(t *testing.T) {
	l := newWarnLimiter(time.Minute, 3)
	t0 := time.Unix(1_800_000_000, 0)
	key := func(i byte) warnKey {
		return warnKey{kind: warnPeer, client: netip.AddrFrom4([4]byte{192, 0, 2, i}), peer: netip.MustParsePrefix("10.0.0.0/24")}
	}
	steps := []struct {
		name string
		key  warnKey
		at   time.Duration
		want bool
	}{
		{"first", key(1), 0, true},
		{"again within the minute", key(1), 30 * time.Second, false},
		{"another client", key(2), 30 * time.Second, true},
		{"third key", key(3), 31 * time.Second, true},
		{"full, all fresh", key(4), 32 * time.Second, false},
		{"full, swept too recently", key(4), 32*time.Second + 100*time.Millisecond, false},
		{"first again after a minute", key(1), 61 * time.Second, true},
		{"full, key 1 refreshed, others fresh", key(5), 62 * time.Second, false},
		{"keys 2 and 3 expired: swept", key(5), 92 * time.Second, true},
	}
	for _, s := range steps {
		if got := l.allow(s.key, t0.Add(s.at)); got != s.want {
			t.Fatalf("%s: allow = %v, want %v", s.name, got, s.want)
		}
		if l.size() > 3 {
			t.Fatalf("%s: %d keys held, bound is 3", s.name, l.size())
		}
	}
}

func TestQuotas(t *testing.T) {
	q := newQuotas(2, 3)
	for _, u := range []string{"a", "a", "b"} {
		if !q.fits(u) || !q.take(u) {
			t.Fatalf("take %s refused", u)
		}
	}
	if q.fits("a") || q.take("a") {
		t.Error("a's third taken")
	}
	if q.fits("c") || q.take("c") {
		t.Error("fourth in all taken")
	}
	q.release("a")
	if !q.take("c") {
		t.Error("released place not given")
	}
	if n, all := q.count("a"); n != 1 || all != 3 {
		t.Errorf("count a = %d, all = %d", n, all)
	}
	q.release("a")
	if _, ok := q.byUser["a"]; ok {
		t.Error("a user with no allocation is still held")
	}
}
