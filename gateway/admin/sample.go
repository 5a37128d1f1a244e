package admin

import (
	"cmp"
	"slices"
	"time"

	"gozer/filters"
	"gozer/filters/lua"
	"gozer/gateway/origin"
)

// The dashboard's numbers: a raw sample is what the counters say at one
// instant; an event (dashEvent) is the difference of two raw samples, the
// rates and shares of the second between them, as GET /dashboard/stream sends
// it. The math (diffSamples) is a pure function, so that every browser sees
// the same numbers and a table test can check them.

// LatencySource gives an origin's recent latency quantiles (the whole request
// at the origin). The dashboard's sampler asks it once per origin per second,
// from its own goroutine: an implementation must be safe for concurrent use
// and cheap. ok is false when it knows nothing of the origin (no request in
// its window): the dashboard then shows "–". Over which window the quantiles
// are taken is the source's choice; the last few seconds suit a dashboard.
type LatencySource interface {
	Quantiles(origin string) (p50, p99 time.Duration, ok bool)
}

// rawSample is the cumulative counters at one instant.
type rawSample struct {
	At      time.Time
	Origins []rawOrigin
	Push    rawPush
	Filters []lua.FilterStatus
}

// rawOrigin is one origin's counters and gauges at one instant.
type rawOrigin struct {
	Name     string
	Requests int64 // requests ended at the origin, every cause
	Errors   int64 // of which ended with a local or origin failure
	Retries  int64
	Refused  int64 // bulkhead refusals
	Breaker  origin.BreakerStats
	NoBreak  bool // the breaker is disabled
	InFlight int64
	Max      int64 // bulkhead cap (≤ 0: none)
	Servers  int
	Avail    int // servers the balancer may pick
	Ejected  int
	P50, P99 time.Duration
	Latency  bool // P50 and P99 are known
}

// rawPush is the push hub's counters at one instant.
type rawPush struct {
	Connections int64
	Sent        int64
}

// dashEvent is one event of GET /dashboard/stream (docs/ADMIN.md shows one).
// Rates are per second over the interval; a share or latency that cannot be
// told (no request in the interval, no latency source) is null.
type dashEvent struct {
	Time     time.Time      `json:"time"`
	Interval float64        `json:"interval_seconds"`
	Origins  []dashOrigin   `json:"origins"`
	Push     dashPush       `json:"push"`
	Filters  []dashFilter   `json:"filters"`
	Sick     int            `json:"sick_origins"`
	Breakers map[string]int `json:"breakers_by_state"`
}

// dashOrigin is one origin's card. Status is sick (breaker not closed, no
// server available, or at least half the requests failing), warn (errors,
// ejections or refusals) or ok; the list is sorted by status, sick first, then
// by name, so that the layout moves only when an origin's health does.
type dashOrigin struct {
	Name          string   `json:"name"`
	Status        string   `json:"status"`
	Rate          float64  `json:"requests_per_second"`
	ErrorShare    *float64 `json:"error_share"`
	P50           *float64 `json:"p50_ms"`
	P99           *float64 `json:"p99_ms"`
	Breaker       string   `json:"breaker"` // closed, open, half_open, or disabled
	WindowReqs    uint64   `json:"breaker_window_requests"`
	WindowErrs    uint64   `json:"breaker_window_errors"`
	Opens         int64    `json:"breaker_opens_total"`
	InFlight      int64    `json:"in_flight"`
	MaxConcurrent int64    `json:"max_concurrent_requests"`
	RefusedRate   float64  `json:"refused_per_second"`
	RetryRate     float64  `json:"retries_per_second"`
	Retries       int64    `json:"retries_total"`
	Servers       int      `json:"servers"`
	Available     int      `json:"servers_available"`
	Ejected       int      `json:"servers_ejected"`
	Requests      int64    `json:"requests_total"`
}

// dashPush is the push connections' line.
type dashPush struct {
	Connections int64   `json:"connections"`
	Rate        float64 `json:"messages_per_second"`
	Sent        int64   `json:"messages_sent_total"`
}

// dashFilter is one Lua filter's row.
type dashFilter struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	File      string   `json:"file"`
	CallRate  float64  `json:"calls_per_second"`
	ErrorRate float64  `json:"errors_per_second"`
	MeanUS    *float64 `json:"mean_time_us"` // per call over the interval
	Calls     int64    `json:"calls_total"`
	Errors    int64    `json:"errors_total"`
	TimeUS    int64    `json:"time_us_total"`
	Disabled  bool     `json:"disabled"`
	LastError string   `json:"last_error"`
}

// breakerDisabled is dashOrigin.Breaker for an origin whose breaker is off
// (breaker.enabled: false).
const breakerDisabled = "disabled"

// Origin statuses, in the order the cards show them.
const (
	statusSick = "sick"
	statusWarn = "warn"
	statusOK   = "ok"
)

// delta is cur - prev for a counter; a counter that went back (its origin was
// rebuilt by a reload) restarted from zero, so the delta is cur, as
// Prometheus's rate() reads a reset.
func delta(cur, prev int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// rate is a counter's increase per second over dt; 0 when dt is not positive.
func rate(cur, prev int64, dt time.Duration) float64 {
	if dt <= 0 {
		return 0
	}
	return float64(delta(cur, prev)) / dt.Seconds()
}

// share is part/whole over the interval, nil when whole did not move.
func share(curPart, prevPart, curWhole, prevWhole int64) *float64 {
	w := delta(curWhole, prevWhole)
	if w <= 0 {
		return nil
	}
	s := min(float64(delta(curPart, prevPart))/float64(w), 1)
	return &s
}

// diffSamples turns two raw samples into the event of the interval between
// them. An origin or filter absent from prev (added by a reload) counts from
// zero. When prev is the zero sample (the sampler's first tick) the rates are
// 0, not the counters' whole history spread over one interval.
func diffSamples(prev, cur *rawSample) dashEvent {
	dt := cur.At.Sub(prev.At)
	first := prev.At.IsZero()
	ev := dashEvent{Time: cur.At.UTC(), Interval: dt.Seconds(), Breakers: map[string]int{}}
	if first {
		ev.Interval = 0
	}
	prevOrigins := make(map[string]*rawOrigin, len(prev.Origins))
	for i := range prev.Origins {
		prevOrigins[prev.Origins[i].Name] = &prev.Origins[i]
	}
	for i := range cur.Origins {
		c := &cur.Origins[i]
		p := prevOrigins[c.Name]
		if p == nil {
			p = &rawOrigin{}
			if first {
				p = c
			}
		}
		d := diffOrigin(p, c, dt)
		ev.Breakers[d.Breaker]++
		if d.Status == statusSick {
			ev.Sick++
		}
		ev.Origins = append(ev.Origins, d)
	}
	slices.SortFunc(ev.Origins, func(a, b dashOrigin) int {
		return cmp.Or(cmp.Compare(statusRank(a.Status), statusRank(b.Status)), cmp.Compare(a.Name, b.Name))
	})
	pushPrev := prev.Push.Sent
	if first {
		pushPrev = cur.Push.Sent
	}
	ev.Push = dashPush{Connections: cur.Push.Connections, Rate: rate(cur.Push.Sent, pushPrev, dt), Sent: cur.Push.Sent}
	ev.Filters = diffFilters(prev.Filters, cur.Filters, dt, first)
	if ev.Origins == nil {
		ev.Origins = []dashOrigin{}
	}
	return ev
}

// diffOrigin is one origin's card over the interval dt from p to c.
func diffOrigin(p, c *rawOrigin, dt time.Duration) dashOrigin {
	d := dashOrigin{
		Name: c.Name, Rate: rate(c.Requests, p.Requests, dt), ErrorShare: share(c.Errors, p.Errors, c.Requests, p.Requests),
		Breaker: c.Breaker.State.String(), WindowReqs: c.Breaker.Requests, WindowErrs: c.Breaker.Errors, Opens: c.Breaker.Opens,
		InFlight: c.InFlight, MaxConcurrent: max(c.Max, 0), RefusedRate: rate(c.Refused, p.Refused, dt),
		RetryRate: rate(c.Retries, p.Retries, dt), Retries: c.Retries,
		Servers: c.Servers, Available: c.Avail, Ejected: c.Ejected, Requests: c.Requests,
	}
	if c.NoBreak {
		d.Breaker = breakerDisabled
	}
	if c.Latency {
		p50, p99 := ms(c.P50), ms(c.P99)
		d.P50, d.P99 = &p50, &p99
	}
	d.Status = originStatus(&d)
	return d
}

// originStatus is sick, warn or ok (dashOrigin says what each means).
func originStatus(d *dashOrigin) string {
	errs := 0.0
	if d.ErrorShare != nil {
		errs = *d.ErrorShare
	}
	switch {
	case d.Breaker == origin.Opened.String(), d.Breaker == origin.HalfOpen.String(),
		d.Servers > 0 && d.Available == 0, errs >= 0.5:
		return statusSick
	case errs > 0, d.Ejected > 0, d.RefusedRate > 0,
		d.MaxConcurrent > 0 && d.InFlight*10 >= d.MaxConcurrent*9:
		return statusWarn
	}
	return statusOK
}

func statusRank(s string) int {
	switch s {
	case statusSick:
		return 0
	case statusWarn:
		return 1
	}
	return 2
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// diffFilters is the filters' rows over dt, in the order of cur (the
// runtime's: by phase and order). A filter is matched by file.
func diffFilters(prev, cur []lua.FilterStatus, dt time.Duration, first bool) []dashFilter {
	byFile := make(map[string]*lua.FilterStatus, len(prev))
	for i := range prev {
		byFile[prev[i].File] = &prev[i]
	}
	out := make([]dashFilter, 0, len(cur))
	for i := range cur {
		c := &cur[i]
		p := byFile[c.File]
		if p == nil || first {
			p = &lua.FilterStatus{}
			if first {
				p = c
			}
		}
		f := dashFilter{
			Name: c.Name, Type: c.Type, File: c.File, Calls: c.Calls, Errors: c.Errors, TimeUS: c.TotalTimeUS,
			CallRate: rate(c.Calls, p.Calls, dt), ErrorRate: rate(c.Errors, p.Errors, dt),
			Disabled: c.Disabled, LastError: c.LastError,
		}
		if n := delta(c.Calls, p.Calls); n > 0 {
			mean := float64(delta(c.TotalTimeUS, p.TotalTimeUS)) / float64(n)
			f.MeanUS = &mean
		}
		out = append(out, f)
	}
	return out
}

// isError reports whether a status cause counts against its origin on the
// dashboard: local and origin failures (a breaker's refusal included), not
// successes and not the clients' own failures. A 5xx that the origin answered
// is a success cause; the breaker's window (breaker_window_errors) counts it.
func isError(c filters.Cause) bool {
	return c.Category == filters.CategoryLocalFailure || c.Category == filters.CategoryOriginFailure
}
