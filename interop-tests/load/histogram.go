package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Log-linear buckets, HDR style: every power of two of nanoseconds is cut
// into subBuckets equal slices, so a percentile is off by < 1/subBuckets
// (under 1 %) whatever its size, in a fixed 40 KiB that never grows.
const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits
	octaves       = 41 // up to 2^(41+7) ns: days
	bucketCount   = (octaves + 1) * subBuckets
)

// Histogram records durations from many goroutines without locks.
type Histogram struct {
	counts [bucketCount]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

// Record adds one sample; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(uint64(v))].Add(1)
	h.total.Add(1)
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest sample.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the sample at quantile q (0..1): the upper edge of its
// bucket, never above the largest sample. Zero when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketUpper(i)), h.Max())
		}
	}
	return h.Max()
}

// Summary is the percentiles reports show, in milliseconds.
func (h *Histogram) Summary() Percentiles {
	return Percentiles{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P95:   ms(h.Quantile(0.95)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(h.Max()),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// bucketOf: values below subBuckets map to themselves; above, the top
// subBucketBits+1 bits pick the slice within the value's power of two.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBucketBits - 1
	idx := (shift+1)*subBuckets + int(v>>uint(shift)) - subBuckets
	if idx >= bucketCount {
		return bucketCount - 1
	}
	return idx
}

// bucketUpper is the largest value bucket i holds.
func bucketUpper(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	sub := uint64(i%subBuckets + subBuckets)
	return (sub+1)<<uint(shift) - 1
}
