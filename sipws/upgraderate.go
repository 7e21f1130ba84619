package sipws

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// upgradeSources bounds the source IPs whose upgrade rate is kept (about
// 200 bytes each): a flood of addresses cannot grow the table past it.
const upgradeSources = 1 << 14

// upgradeRates is one limiter of limits.upgrades_per_ip per source IP. An
// entry silent for refill (long enough to fill its bucket again) is worth
// no more than a new one, so sweeping it loses nothing; when the table is
// full all the same, an arbitrary entry makes room: that source merely
// starts again with a full bucket.
type upgradeRates struct {
	perSecond float64
	refill    time.Duration

	mu        sync.Mutex
	bySource  map[netip.Addr]*sourceRate
	lastSweep time.Time
}

type sourceRate struct {
	lim  *rate.Limiter
	seen time.Time
}

func newUpgradeRates(perSecond float64) *upgradeRates {
	lim := newRate(perSecond)
	refill := time.Duration(float64(lim.Burst()) / perSecond * float64(time.Second))
	return &upgradeRates{perSecond: perSecond, refill: max(refill, time.Second), bySource: map[netip.Addr]*sourceRate{}}
}

// allow takes one upgrade from ip's bucket; when it is empty it returns
// false and the Retry-After in seconds.
func (u *upgradeRates) allow(ip netip.Addr, now time.Time) (bool, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sweep(now)
	e := u.bySource[ip]
	if e == nil {
		u.makeRoom()
		e = &sourceRate{lim: newRate(u.perSecond)}
		u.bySource[ip] = e
	}
	e.seen = now
	if e.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, retryAfter(e.lim, now)
}

// sweep drops the entries silent for refill, at most once per refill.
func (u *upgradeRates) sweep(now time.Time) {
	if now.Sub(u.lastSweep) < u.refill {
		return
	}
	u.lastSweep = now
	for ip, e := range u.bySource {
		if now.Sub(e.seen) >= u.refill {
			delete(u.bySource, ip)
		}
	}
}

// makeRoom drops one entry, any (map order is random), when the table is full.
func (u *upgradeRates) makeRoom() {
	if len(u.bySource) < upgradeSources {
		return
	}
	for ip := range u.bySource {
		delete(u.bySource, ip)
		return
	}
}
