package load

import (
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1 << 40, 3<<40 + 12345} {
		i := bucketOf(v)
		if up := bucketUpper(i); up < v {
			t.Errorf("value %d in bucket %d whose upper edge %d is below it", v, i, up)
		}
		if i > 0 && bucketUpper(i-1) >= v {
			t.Errorf("value %d in bucket %d but bucket %d already reaches %d", v, i, i-1, bucketUpper(i-1))
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond},
		{"median of 1..100 ms", spread(100, time.Millisecond), 0.50, 50 * time.Millisecond},
		{"p99 of 1..100 ms", spread(100, time.Millisecond), 0.99, 99 * time.Millisecond},
		{"p95 of 1..1000 µs", spread(1000, time.Microsecond), 0.95, 950 * time.Microsecond},
		{"negative counts as zero", []time.Duration{-time.Second}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, s := range tt.samples {
				h.Record(s)
			}
			got := h.Quantile(tt.q)
			// Within the bucket precision (1/128) above the exact value.
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/subBuckets+1 {
				t.Errorf("quantile %.2f = %v, want %v (+1/%d)", tt.q, got, tt.want, subBuckets)
			}
		})
	}
}

func spread(n int, unit time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * unit
	}
	return out
}
