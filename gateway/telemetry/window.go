package telemetry

import (
	"sync"
	"time"
)

// LatencyWindow gives each origin's p50 and p99 over the last few seconds,
// from Metrics' cumulative at-origin histograms (a request's time from its
// admission to the origin to its end): each call keeps the origin's
// histogram as of now, and answers over the difference with the one kept at
// least Window ago (or the oldest kept, in the first seconds). It is the
// dashboard's latency (gateway/admin.LatencySource), meant to be asked about
// once a second per origin; it adds nothing to the request path.
//
// Concurrency: Quantiles may be called from any goroutine (one mutex).
type LatencyWindow struct {
	m      *Metrics
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	kept map[string][]stamped // per origin, oldest first
}

// stamped is a histogram as of a time.
type stamped struct {
	at time.Time
	h  Histogram
}

// NewLatencyWindow reads m over windows of window (5 s suits a dashboard).
func NewLatencyWindow(m *Metrics, window time.Duration) *LatencyWindow {
	return &LatencyWindow{m: m, window: window, now: time.Now, kept: map[string][]stamped{}}
}

// Quantiles is the p50 and p99 of originName's requests (their time at the
// origin) over the last window; ok is false when none ended in it.
func (w *LatencyWindow) Quantiles(originName string) (p50, p99 time.Duration, ok bool) {
	_, cur, seen := w.m.Latency(originName)
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !seen {
		delete(w.kept, originName) // never seen, or deleted: start over
		return 0, 0, false
	}
	kept := append(w.kept[originName], stamped{now, cur})
	// Drop what is older than the newest sample at least window old: that
	// one is the base.
	cut := now.Add(-w.window)
	base := 0
	for i := range kept {
		if !kept[i].at.After(cut) {
			base = i
		}
	}
	kept = append(kept[:0], kept[base:]...)
	w.kept[originName] = kept
	var d Histogram
	if len(kept) == 1 {
		d = cur // the first call: since start
	} else {
		d = cur.Sub(kept[0].h)
	}
	if d.Count() == 0 {
		return 0, 0, false
	}
	return seconds(d.Quantile(0.5)), seconds(d.Quantile(0.99)), true
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
