package admin

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"gozer/filters"
	"gozer/gateway/origin"
)

const (
	// sampleInterval is how often the sampler reads the counters and sends
	// an event to every dashboard stream.
	sampleInterval = time.Second
	// maxDashboardStreams bounds the dashboards open at once; one more is
	// answered 503.
	maxDashboardStreams = 32
)

var (
	errTooManyStreams = errors.New("too many dashboard streams")
	errSamplerClosed  = errors.New("dashboard sampler closed")
)

// sampler reads the gateway's counters once per interval and turns each pair
// of readings into one JSON event (diffSamples), the same bytes for every
// subscribed stream, so that every browser sees the same numbers.
//
// Concurrency: one goroutine samples, started by the first Subscribe and
// ended when the last subscriber leaves (at its next tick) or by Close.
// Subscribe, the cancel func it returns, and Close may be called from any
// goroutine. Each subscriber has a channel of one event: a slow reader skips
// events rather than holding the sampler or growing a queue. Memory is one
// raw sample and one encoded event, whatever the number of subscribers.
type sampler struct {
	collect  func(now time.Time) rawSample
	interval time.Duration

	mu      sync.Mutex
	subs    map[chan []byte]struct{}
	running bool
	closed  bool
	last    []byte // the latest event, sent first to a new subscriber

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

func newSampler(collect func(time.Time) rawSample, interval time.Duration) *sampler {
	return &sampler{collect: collect, interval: interval, subs: map[chan []byte]struct{}{}, done: make(chan struct{})}
}

// Subscribe adds a stream: ch receives each new event, last is the latest
// one (nil before the first), cancel removes the stream (call it once).
// Past maxDashboardStreams, or after Close, it fails.
func (s *sampler) Subscribe() (ch <-chan []byte, last []byte, cancel func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, nil, errSamplerClosed
	}
	if len(s.subs) >= maxDashboardStreams {
		return nil, nil, nil, errTooManyStreams
	}
	c := make(chan []byte, 1)
	s.subs[c] = struct{}{}
	if !s.running {
		s.running, s.last = true, nil
		s.wg.Add(1)
		go s.run()
	}
	var once sync.Once
	return c, s.last, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, c)
			s.mu.Unlock()
		})
	}, nil
}

// Done is closed when the sampler closes: the streams end then.
func (s *sampler) Done() <-chan struct{} { return s.done }

// Close ends the sampling goroutine and every stream, and waits for the
// goroutine. Later Subscribes fail.
func (s *sampler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
}

// run samples every interval until no subscriber is left or Close.
func (s *sampler) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	prev := s.collect(time.Now())
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			cur := s.collect(now)
			ev := diffSamples(&prev, &cur)
			prev = cur
			b, err := json.Marshal(ev)
			if err != nil { // cannot happen: plain types, NaN-free
				continue
			}
			if !s.publish(b) {
				return
			}
		}
	}
}

// publish hands b to every subscriber, replacing an event one has not taken
// yet. With no subscriber left it marks the sampler stopped and returns false.
func (s *sampler) publish(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) == 0 {
		s.running = false
		return false
	}
	s.last = b
	for c := range s.subs {
		select {
		case <-c: // the reader has not taken the previous one: it skips it
		default:
		}
		c <- b // only this goroutine sends, and the channel has room now
	}
	return true
}

// collect reads every source the dashboard shows at now. Sources fields may
// be nil (Origins, Counts, Filters, Push, Latency): what they would show is
// left out.
func (src *Sources) collect(now time.Time) rawSample {
	rs := rawSample{At: now}
	var counts map[string]map[string]int64
	if src.Counts != nil {
		counts = src.Counts.Snapshot()
	}
	if src.Origins != nil {
		if t := src.Origins(); t != nil {
			for _, o := range t.List {
				rs.Origins = append(rs.Origins, src.collectOrigin(o, counts[o.Name], now.UnixNano()))
			}
		}
	}
	if h := src.Push; h != nil {
		rs.Push = rawPush{Connections: h.Stats.Open.Load(), Sent: h.Stats.Sent.Load()}
	}
	if src.Filters != nil {
		rs.Filters = src.Filters.Status()
	}
	return rs
}

// collectOrigin reads one origin at now (unix ns); causes are its requests
// by status cause.
func (src *Sources) collectOrigin(o *origin.Origin, causes map[string]int64, now int64) rawOrigin {
	r := rawOrigin{Name: o.Name}
	for name, n := range causes {
		r.Requests += n
		if i := filters.CauseIndex(name); i >= 0 && isError(filters.Causes()[i]) {
			r.Errors += n
		}
	}
	if src.Latency != nil {
		r.P50, r.P99, r.Latency = src.Latency.Quantiles(o.Name)
	}
	iso := o.Iso
	if iso == nil {
		r.Servers, r.Avail = len(o.Servers), len(o.Servers)
		return r
	}
	r.Breaker, r.NoBreak = iso.Breaker.Stats(now), !iso.Breaker.Enabled()
	r.InFlight, r.Max, r.Refused = iso.Bulkhead.InFlight(), iso.Bulkhead.Max(), iso.Bulkhead.Refused()
	r.Retries = iso.Budget.Retries()
	for _, srv := range iso.Discovery.Servers().List {
		r.Servers++
		if srv.Available(now) {
			r.Avail++
		}
		if iso.Outlier.Ejected(srv, now) {
			r.Ejected++
		}
	}
	return r
}
