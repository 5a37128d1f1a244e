package origin

import (
	"sync/atomic"
	"time"
)

// OutlierConfig is origins.NAME.outlier.
type OutlierConfig struct {
	// ConsecutiveFailures ejects a server after this many failed attempts in a row
	// (connect failure, reset, timeout, 5xx). 0 means 5; negative turns ejection off.
	ConsecutiveFailures int
	// BaseEjection is the first ejection's length; the k-th lasts base × 2^(k-1).
	// 0 means 30 s.
	BaseEjection time.Duration
	// MaxEjection caps an ejection's length. 0 means 300 s.
	MaxEjection time.Duration
	// MaxEjectionPercent is the most of the origin's servers ejected at once
	// (rounded down); an ejection past it is refused. 0 means 50; 100 allows all.
	MaxEjectionPercent int
}

// Outlier defaults; Envoy's consecutive_5xx is 5 and base_ejection_time 30 s.
const (
	DefaultConsecutiveFailures = 5
	DefaultBaseEjection        = 30 * time.Second
	DefaultMaxEjection         = 300 * time.Second
	DefaultMaxEjectionPercent  = 50
)

// Outlier ejects the servers of one origin that fail attempt after attempt: after N
// consecutive failures a server leaves balancing for base × 2^(k-1) (k = times it
// was ejected recently, capped at max), and returns by itself when that time has
// passed: nothing has to run for it to come back. k falls back to zero once the
// server has served for MaxEjection after its last return.
//
// An Outlier is safe for concurrent use. Report on a success is at most a load and
// a store on the server; a failure is one atomic add. Only the rare decision to
// eject walks the server set, and one decision runs at a time: a racing one gives
// up instead of waiting (the server's next failure tries again), so the loops never
// block and the ejection cap cannot be overrun by two ejections at once.
type Outlier struct {
	threshold int32
	base, max int64
	percent   int
	src       ServerSource

	deciding atomic.Bool
	ejected  atomic.Int64 // ejections made, for metrics
	refused  atomic.Int64 // ejections refused by the cap
}

// NewOutlier builds the ejector of the servers src publishes.
func NewOutlier(cfg OutlierConfig, src ServerSource) *Outlier {
	o := &Outlier{
		threshold: int32(cfg.ConsecutiveFailures), base: int64(cfg.BaseEjection),
		max: int64(cfg.MaxEjection), percent: cfg.MaxEjectionPercent, src: src,
	}
	if cfg.ConsecutiveFailures == 0 {
		o.threshold = DefaultConsecutiveFailures
	}
	if o.base <= 0 {
		o.base = int64(DefaultBaseEjection)
	}
	if o.max <= 0 {
		o.max = int64(DefaultMaxEjection)
	}
	o.max = max(o.max, o.base)
	if o.percent <= 0 {
		o.percent = DefaultMaxEjectionPercent
	}
	return o
}

// Report counts an attempt's result on srv at now; it reports whether this failure
// ejected srv.
func (o *Outlier) Report(srv *Server, ok bool, now int64) bool {
	if o.threshold < 0 {
		return false
	}
	if ok {
		// Loads first: a healthy server's line is then only read, not written, by
		// every loop on every request.
		if srv.consecutive.Load() != 0 {
			srv.consecutive.Store(0)
		}
		if k := srv.ejections.Load(); k > 0 && now-srv.ejectedTill.Load() >= o.max {
			srv.ejections.CompareAndSwap(k, 0)
		}
		return false
	}
	if srv.consecutive.Add(1) < o.threshold || srv.ejectedTill.Load() > now {
		return false // not yet; or already out (its in-flight attempts still report)
	}
	if !o.deciding.CompareAndSwap(false, true) {
		return false
	}
	defer o.deciding.Store(false)
	list := o.src.Servers().List
	out, member := 0, false
	for _, s := range list {
		if s == srv {
			member = true
		} else if s.ejectedTill.Load() > now {
			out++
		}
	}
	if !member {
		return false // it left the set (DNS): nothing to eject
	}
	srv.consecutive.Store(0)
	if (out+1)*100 > o.percent*len(list) {
		o.refused.Add(1)
		return false
	}
	k := srv.ejections.Add(1)
	srv.ejectedTill.Store(now + o.ejection(k))
	o.ejected.Add(1)
	return true
}

// ejection is the length of the k-th ejection: base × 2^(k-1), capped at max.
func (o *Outlier) ejection(k int32) int64 {
	d := o.base
	for i := int32(1); i < k && d < o.max; i++ {
		d *= 2
	}
	return min(d, o.max)
}

// Ejected reports whether srv is out of balancing at now.
func (o *Outlier) Ejected(srv *Server, now int64) bool { return srv.ejectedTill.Load() > now }

// Counts returns the ejections made and refused (by MaxEjectionPercent) so far.
func (o *Outlier) Counts() (ejected, refused int64) { return o.ejected.Load(), o.refused.Load() }
