package telemetry

import "math"

// Count is the number of observations in h.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// Cumulative returns, for each bound of LatencyBuckets, how many
// observations were at most it (Prometheus' le buckets, without +Inf, which
// is Count).
func (h Histogram) Cumulative() []uint64 {
	out := make([]uint64, len(LatencyBuckets))
	var n uint64
	for i := range out {
		n += h.Buckets[i]
		out[i] = n
	}
	return out
}

// Sub is what h counted since prev (an earlier answer of the same origin's
// histogram): the window between them. A bucket that went backwards (the
// origin was deleted and counted anew) counts as zero.
func (h Histogram) Sub(prev Histogram) Histogram {
	var d Histogram
	for i := range h.Buckets {
		if h.Buckets[i] > prev.Buckets[i] {
			d.Buckets[i] = h.Buckets[i] - prev.Buckets[i]
		}
	}
	d.Sum = max(0, h.Sum-prev.Sum)
	return d
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) of h in seconds, as
// Prometheus' histogram_quantile does: linear within the bucket the rank
// falls in (from 0 for the first), the highest finite bound for the +Inf
// bucket. NaN when h is empty.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Count()
	if total == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var seen uint64
	for i, c := range h.Buckets {
		if c == 0 || float64(seen+c) < rank {
			seen += c
			continue
		}
		if i == len(LatencyBuckets) {
			return LatencyBuckets[i-1]
		}
		lo := 0.0
		if i > 0 {
			lo = LatencyBuckets[i-1]
		}
		return lo + (LatencyBuckets[i]-lo)*(rank-float64(seen))/float64(c)
	}
	return LatencyBuckets[len(LatencyBuckets)-1]
}
