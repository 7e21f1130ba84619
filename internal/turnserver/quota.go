package turnserver

import "sync"

// quotas counts allocations per user and in all (RFC 8656 §7.2: a server
// may refuse with 486 Allocation Quota Reached, and should count by
// username, not by client address).
//
// pion asks its QuotaHandler (fits) before it makes the relay and has no
// hook after; the count itself is taken when the relay is made (take) and
// given back when pion closes it (release), so it cannot drift from the
// relays that exist. Two Allocates of one user racing past fits are
// caught by take, which pion answers with 508.
type quotas struct {
	perUser, total int

	mu     sync.Mutex
	byUser map[string]int
	all    int
}

func newQuotas(perUser, total int) *quotas {
	return &quotas{perUser: perUser, total: total, byUser: make(map[string]int)}
}

// fits says whether user may have one more allocation.
func (q *quotas) fits(user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.byUser[user] < q.perUser && q.all < q.total
}

// take counts one more allocation of user if it fits.
func (q *quotas) take(user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byUser[user] >= q.perUser || q.all >= q.total {
		return false
	}
	q.byUser[user]++
	q.all++
	return true
}

func (q *quotas) release(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := q.byUser[user]; n > 1 {
		q.byUser[user] = n - 1
	} else {
		delete(q.byUser, user)
	}
	q.all--
}

func (q *quotas) count(user string) (ofUser, all int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.byUser[user], q.all
}
