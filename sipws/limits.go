package sipws

import (
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/imsgate/imsgate/configs"
)

// WithLimits sets the abuse limits of the intake (the limits config
// section). Without it configs.DefaultLimits apply: the limits are never
// off. sipws applies conns_per_ip, upgrades_per_ip, upgrade_timeout,
// max_upgrade_bytes, requests_per_conn, max_headers, max_sdp_bytes and
// log_window; the rest are the b2bua's.
func WithLimits(l configs.Limits) Option {
	return func(s *Server) { s.limits = l }
}

// newRate is a limiter of perSecond with a burst of twice as many (at
// least one), as the limits section documents.
func newRate(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(math.Ceil(2*perSecond))))
}

// retryAfter is the Retry-After, in whole seconds and at least one, for a
// limiter that has just refused: the time until its next token.
func retryAfter(lim *rate.Limiter, now time.Time) int {
	missing := 1 - lim.TokensAt(now)
	secs := int(math.Ceil(missing / float64(lim.Limit())))
	return max(1, secs)
}
