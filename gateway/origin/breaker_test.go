package origin

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/afex/hystrix-go/hystrix"
)

const sec = int64(time.Second)

// t0 is an arbitrary start, far from zero so that a "0 = closed" state cannot be
// confused with a time.
const t0 = 1_700_000_000 * sec

var breakerSeq atomic.Int64

// testBreaker is a breaker with a unique hystrix name (hystrix's registry is global)
// and no metrics copy unless asked.
func testBreaker(cfg BreakerConfig) *Breaker {
	cfg.Enabled = true
	if cfg.HystrixSample == 0 {
		cfg.HystrixSample = -1
	}
	return NewBreaker(fmt.Sprintf("test-breaker-%d", breakerSeq.Add(1)), cfg)
}

func TestBreakerTripsOnVolumeAndPercent(t *testing.T) {
	tests := []struct {
		name            string
		volume, percent int
		ok, fail        int // successes first, then failures, all in one second
		wantOpen        bool
	}{
		{"under volume, all failing", 20, 50, 0, 19, false},
		{"at volume, all failing", 20, 50, 0, 20, true},
		{"at threshold exactly", 20, 50, 10, 10, true},
		{"just under threshold", 20, 50, 11, 10, false},
		{"defaults apply (20, 50 %)", 0, 0, 0, 20, true},
		{"defaults: 19 is under volume", 0, 0, 0, 19, false},
		{"high threshold", 10, 90, 2, 18, true},
		{"high threshold missed", 10, 90, 3, 18, false},
		{"volume 1", 1, 100, 0, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBreaker(BreakerConfig{RequestVolumeThreshold: tc.volume, ErrorPercentThreshold: tc.percent, SleepWindow: time.Second})
			now := t0
			for range tc.ok {
				b.ReportAt(Success, now, now)
			}
			for range tc.fail {
				b.ReportAt(Failure, now, now)
			}
			if got := b.Open(); got != tc.wantOpen {
				t.Fatalf("Open() = %v, want %v (stats %+v)", got, tc.wantOpen, b.Stats(now))
			}
			if got := b.AllowAt(now); got == tc.wantOpen {
				t.Fatalf("AllowAt = %v with the breaker open=%v", got, tc.wantOpen)
			}
		})
	}
}

func TestBreakerLifecycle(t *testing.T) {
	const sleep = 5 * time.Second
	tests := []struct {
		name      string
		trial     Outcome
		wantState BreakerState
	}{
		{"trial success closes", Success, Closed},
		{"trial failure re-opens", Failure, Opened},
		{"trial timeout re-opens", Timeout, Opened},
		{"canceled trial leaves it half-open", Canceled, HalfOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBreaker(BreakerConfig{RequestVolumeThreshold: 4, ErrorPercentThreshold: 50, SleepWindow: sleep})
			now := t0
			for range 4 {
				b.ReportAt(Timeout, now, now)
			}
			if s := b.Stats(now).State; s != Opened {
				t.Fatalf("after 4 timeouts state = %v, want open", s)
			}
			now += int64(sleep) - 1
			if b.AllowAt(now) || !b.Refusing(now) {
				t.Fatal("allowed before the sleep window passed")
			}
			now++
			if b.Refusing(now) {
				t.Fatal("Refusing once the trial is due")
			}
			if !b.AllowAt(now) {
				t.Fatal("no trial after the sleep window")
			}
			trialStart := now
			if b.AllowAt(now) || b.AllowAt(now+int64(sleep)/2) {
				t.Fatal("a second request let through while the trial is out")
			}
			now += 10 * int64(time.Millisecond)
			b.ReportAt(tc.trial, trialStart, now)
			if s := b.Stats(now).State; s != tc.wantState {
				t.Fatalf("state after trial = %v, want %v", s, tc.wantState)
			}
			switch tc.wantState {
			case Closed:
				if st := b.Stats(now); st.Requests != 0 {
					t.Fatalf("closing kept the old window: %+v", st)
				}
				if !b.AllowAt(now) {
					t.Fatal("closed breaker refused")
				}
			case Opened:
				// The sleep window restarts from the failed trial.
				if b.AllowAt(now + int64(sleep) - 1) {
					t.Fatal("trial allowed before a full sleep window after the failed trial")
				}
				if !b.AllowAt(now + int64(sleep)) {
					t.Fatal("no new trial a sleep window after the failed trial")
				}
			case HalfOpen:
				// A trial that never reports is replaced a sleep window later.
				if b.AllowAt(trialStart + int64(sleep) - 1) {
					t.Fatal("replacement trial came early")
				}
				if !b.AllowAt(trialStart + int64(sleep)) {
					t.Fatal("lost trial never replaced: breaker stuck half-open")
				}
			}
		})
	}
}

// A success from a request admitted before the breaker opened must not close it:
// hystrix-go closes on any success while open, which lets an origin that fails
// most requests flap closed on every straggler.
func TestBreakerIgnoresStragglers(t *testing.T) {
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 10, SleepWindow: time.Second})
	start := t0
	now := t0 + sec/2
	for range 10 {
		b.ReportAt(Failure, now, now)
	}
	if !b.Open() {
		t.Fatal("did not open")
	}
	b.ReportAt(Success, start, now+1) // admitted at t0, before opening
	if s := b.Stats(now).State; s != Opened {
		t.Fatalf("straggler success moved the breaker to %v", s)
	}
	now += sec
	if !b.AllowAt(now) {
		t.Fatal("no trial")
	}
	b.ReportAt(Success, start, now+2) // another straggler, while half-open
	if s := b.Stats(now).State; s != HalfOpen {
		t.Fatalf("straggler success during half-open moved the breaker to %v", s)
	}
	b.ReportAt(Success, now, now+3) // the trial
	if b.Open() {
		t.Fatal("trial success did not close")
	}
}

func TestBreakerWindowForgetsOldErrors(t *testing.T) {
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 20, SleepWindow: time.Second})
	now := t0
	for range 19 {
		b.ReportAt(Failure, now, now)
	}
	// Ten seconds later the bucket of those failures has left the window.
	now += 10 * sec
	b.ReportAt(Failure, now, now)
	if b.Open() {
		t.Fatalf("old failures still counted: %+v", b.Stats(now))
	}
	if st := b.Stats(now); st.Requests != 1 || st.Errors != 1 {
		t.Fatalf("window = %+v, want 1 request 1 error", st)
	}
	// Nine seconds apart they are still in it.
	b2 := testBreaker(BreakerConfig{RequestVolumeThreshold: 20, SleepWindow: time.Second})
	for range 19 {
		b2.ReportAt(Failure, t0, t0)
	}
	b2.ReportAt(Failure, t0+9*sec, t0+9*sec)
	if !b2.Open() {
		t.Fatal("failures 9 s apart not summed")
	}
}

func TestBreakerDisabled(t *testing.T) {
	b := NewBreaker("test-breaker-disabled", BreakerConfig{Enabled: false, HystrixSample: -1})
	for range 100 {
		b.ReportAt(Failure, t0, t0)
	}
	if b.Open() || !b.AllowAt(t0) || b.Refusing(t0) {
		t.Fatal("a disabled breaker refused")
	}
}

func TestBreakerClockWrappers(t *testing.T) {
	now := t0
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 1, SleepWindow: time.Second, Clock: func() int64 { return now }})
	b.Report(Failure, time.Unix(0, now), time.Millisecond)
	if !b.Open() || b.Allow() {
		t.Fatal("Report/Allow wrappers did not open and refuse")
	}
	now += sec + int64(time.Millisecond)
	if !b.Allow() {
		t.Fatal("Allow wrapper gave no trial with the injected clock")
	}
}

// Many loops at once: a burst of failures opens the breaker, and of many loops
// asking when the trial is due exactly one gets it.
func TestBreakerConcurrentSingleTrial(t *testing.T) {
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 100, SleepWindow: time.Second})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if b.AllowAt(t0) {
					b.ReportAt(Failure, t0, t0)
				}
			}
		}()
	}
	wg.Wait()
	if st := b.Stats(t0); st.State != Opened || st.Opens != 1 {
		t.Fatalf("after a concurrent burst: %+v, want open once", st)
	}
	var granted atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if b.AllowAt(t0 + sec) {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 1 {
		t.Fatalf("%d trials granted, want exactly 1", granted.Load())
	}
}

// recordingSink stands in for hystrix's circuit behind the mirror.
type recordingSink struct{ events, errors int }

func (r *recordingSink) ReportEvent(ev []string, _ time.Time, _ time.Duration) error {
	r.events++
	if ev[0] != "success" {
		r.errors++
	}
	return nil
}

// The hystrix copy is sampled in time: one outcome per HystrixSample at most, with
// the error share kept.
func TestBreakerMirrorSamples(t *testing.T) {
	tests := []struct {
		name       string
		sample     time.Duration
		n          int
		gap        time.Duration
		wantEvents int
	}{
		{"one per ms", time.Millisecond, 1000, 100 * time.Microsecond, 100},
		{"slower than the sample: all", time.Millisecond, 50, 2 * time.Millisecond, 50},
		{"a burst within one period: one", time.Millisecond, 500, time.Microsecond, 1},
		{"off", -1, 1000, time.Millisecond, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBreaker(BreakerConfig{RequestVolumeThreshold: 1 << 20, HystrixSample: tc.sample})
			rec := &recordingSink{}
			b.sink = rec
			// A quarter of the outcomes fail, at random (a periodic pattern would
			// alias with the sampling).
			rnd := NewRand(42)
			now := t0
			for range tc.n {
				o := Success
				if rnd.Uint32()%4 == 0 {
					o = Failure
				}
				b.ReportAt(o, now, now)
				now += int64(tc.gap)
			}
			// The request path only queues: nothing reaches hystrix until
			// the forwarder (the server's tick) runs.
			if rec.events != 0 {
				t.Fatalf("%d events sent from ReportAt, want them queued", rec.events)
			}
			b.ForwardSamples()
			if rec.events != tc.wantEvents {
				t.Fatalf("%d events copied, want %d", rec.events, tc.wantEvents)
			}
			if tc.wantEvents >= 100 && (rec.errors*100 < 15*rec.events || rec.errors*100 > 35*rec.events) {
				t.Fatalf("%d errors of %d copied: the 25 %% share is lost", rec.errors, rec.events)
			}
		})
	}
}

// A forwarder that falls behind loses copies beyond maxPendingSamples; the
// queue never grows past it, and nothing is sent twice.
func TestBreakerMirrorBound(t *testing.T) {
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 1 << 20, HystrixSample: time.Millisecond})
	rec := &recordingSink{}
	b.sink = rec
	now := t0
	for range 3 * maxPendingSamples {
		b.ReportAt(Success, now, now)
		now += int64(time.Millisecond)
	}
	if len(b.pending) != maxPendingSamples {
		t.Fatalf("%d copies queued, want the bound %d", len(b.pending), maxPendingSamples)
	}
	b.ForwardSamples()
	if rec.events != maxPendingSamples {
		t.Fatalf("%d copies forwarded, want %d", rec.events, maxPendingSamples)
	}
	b.ReportAt(Failure, now, now)
	b.ForwardSamples()
	b.ForwardSamples() // nothing new: nothing sent twice
	if rec.events != maxPendingSamples+1 || rec.errors != 1 {
		t.Fatalf("after one more: %d events, %d errors; want %d and 1", rec.events, rec.errors, maxPendingSamples+1)
	}
}

// countingSink records how often each sample (by its start time) arrived.
type countingSink struct {
	mu   sync.Mutex
	seen map[int64]int
}

func (c *countingSink) ReportEvent(_ []string, start time.Time, _ time.Duration) error {
	c.mu.Lock()
	c.seen[start.UnixNano()]++
	c.mu.Unlock()
	return nil
}

// Loops queue samples while two forwarders run (the tick, and a reload
// flushing the table it replaced, share carried-over breakers): no sample is
// sent twice, none is left queued, and the race detector finds nothing.
func TestBreakerMirrorConcurrentForwarders(t *testing.T) {
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 1 << 30, HystrixSample: 1})
	sink := &countingSink{seen: map[int64]int{}}
	b.sink = sink
	var clock atomic.Int64
	clock.Store(t0)
	stop := make(chan struct{})
	var fwd sync.WaitGroup
	for range 2 {
		fwd.Add(1)
		go func() {
			defer fwd.Done()
			for {
				select {
				case <-stop:
					return
				default:
					b.ForwardSamples()
				}
			}
		}()
	}
	const loops, each = 4, 5000
	var wg sync.WaitGroup
	for range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n := clock.Add(1)
				b.ReportAt(Success, n, n)
			}
		}()
	}
	wg.Wait()
	close(stop)
	fwd.Wait()
	b.ForwardSamples()
	for start, n := range sink.seen {
		if n != 1 {
			t.Fatalf("sample %d sent %d times", start, n)
		}
	}
	if len(b.pending) != 0 {
		t.Fatalf("%d samples left queued after the last forward", len(b.pending))
	}
	// Each report is its own sample period (HystrixSample 1 ns, distinct
	// times): all are queued but what a full queue drops.
	if len(sink.seen) > loops*each || len(sink.seen) < maxPendingSamples {
		t.Fatalf("%d distinct samples sent of %d reported", len(sink.seen), loops*each)
	}
}

// End to end with hystrix-go: the copied failures reach its circuit, whose own
// rule (fed by the copy) then opens it.
func TestBreakerMirrorReachesHystrix(t *testing.T) {
	b := testBreaker(BreakerConfig{RequestVolumeThreshold: 1 << 20, HystrixSample: time.Millisecond})
	hystrix.ConfigureCommand(b.name, hystrix.CommandConfig{RequestVolumeThreshold: 50})
	now := t0
	for range 2000 {
		b.ReportAt(Failure, now, now)
		now += int64(100 * time.Microsecond) // 200 ms: 200 copies
	}
	b.ForwardSamples()
	deadline := time.Now().Add(5 * time.Second)
	for !b.Circuit().IsOpen() {
		if time.Now().After(deadline) {
			t.Fatal("hystrix's circuit never saw the copied failures")
		}
		time.Sleep(time.Millisecond) // hystrix applies events on its own goroutine
	}
	if b.Open() {
		t.Fatal("our breaker followed hystrix's state; it must decide alone")
	}
}
