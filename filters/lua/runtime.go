package lua

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
	"gozer/filters/dict"
	"gozer/gateway/ratelimit"
)

// Defaults for the zero values of Options.
const (
	DefaultBudget       = 5 * time.Millisecond
	DefaultMaxBodyBytes = 1 << 20
	// pollInterval is how often Start's goroutine looks for changed scripts.
	pollInterval = 250 * time.Millisecond
	// minLoadBudget is the least time a script's top-level chunk gets when it
	// is loaded (it may build lookup tables); the per-call Budget may be tiny.
	minLoadBudget = 100 * time.Millisecond
	// minStringCap is the least size string.rep & co. may build.
	minStringCap = 1 << 20
)

// Options configures a Runtime.
type Options struct {
	Dir          string        // scripts root: Dir/inbound, Dir/endpoint, Dir/outbound
	Budget       time.Duration // per filter call (should_filter + apply); default 5ms
	Disabled     []string      // filter names disabled by config (file stays loaded, never runs)
	Log          zerolog.Logger
	MaxBodyBytes int    // cap for buffered bodies (ctx.req.body / ctx.resp.body); default 1 MiB
	PushSecret   []byte // checks push tokens (ctx.push_verify); empty: every token is refused
	// MaxSuspended caps the requests waiting in async filters on one loop;
	// default DefaultMaxSuspended.
	MaxSuspended int
	// Dicts are the node's shared dictionaries (ctx.shared); nil: none.
	Dicts *dict.Set
	// Limits are the node's rate limits and deny list (ctx.limit, ctx.deny);
	// nil: ctx.limit admits everything and ctx.deny raises.
	Limits *ratelimit.Node
	// GoFilters are the filters written in Go (filters/builtin), sorted
	// into every chain with the scripts by (order, name).
	GoFilters []filters.Filter
}

// FilterStatus is one script file as GET /admin/filters shows it.
type FilterStatus struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Order       int       `json:"order"`
	File        string    `json:"file"`
	Hash        string    `json:"hash"`               // sha256 of the version in service (16 hex digits)
	LoadedAt    time.Time `json:"loaded_at,omitzero"` // when the version in service was loaded
	LastError   string    `json:"last_error"`         // why the file's latest content was refused ("" when it was not)
	Calls       int64     `json:"calls_total"`        // filter invocations, all loops
	Errors      int64     `json:"errors_total"`       // raised errors and timeouts, all loops
	Timeouts    int64     `json:"timeouts_total"`     // invocations stopped by the budget
	TotalTimeUS int64     `json:"time_us_total"`      // time spent in the filter, all loops (sync filters: sampled, timing.go)
	Disabled    bool      `json:"disabled"`
}

// script is one accepted version of one file: compiled once, then shared
// read-only by every loop, which each instantiate it on their own LState.
type script struct {
	file     string // path under Dir, as logged and shown (Dir joined)
	phase    filters.Phase
	name     string
	order    int
	fatal    bool
	body     bool
	async    bool
	proto    *glua.FunctionProto
	hash     string
	loadedAt time.Time
	disabled bool
}

// version is one published set of scripts. Immutable once published.
type version struct {
	seq     uint64
	scripts []*script // sorted by phase, order, name
}

// counters are one filter's statistics on one loop. Written by the loop,
// read by Status from any goroutine.
type counters struct {
	calls, errors, timeouts, nanos atomic.Int64
}

// Runtime loads the Lua filters of a directory, reloads them when they
// change, and hands each event loop its Loop.
//
// Concurrency: New, Start, Stop, Status and NewLoop may be called from any
// goroutine. The current filter set is published with an atomic pointer, so
// Loop.Chain never takes a lock.
type Runtime struct {
	opts Options
	log  zerolog.Logger
	// budget, loadBudget (ns) and maxSuspended change with a configuration
	// reload (SetLimits); loops read them per call.
	budget     atomic.Int64
	loadBudget atomic.Int64
	maxStr     int
	disabled   map[string]bool
	// maxSuspended is Options.MaxSuspended or its default.
	maxSuspended atomic.Int64
	// goNames are the Go filters' names, which no script may take.
	goNames map[string]bool
	// suspendedNow counts the requests waiting in async filters, all loops.
	suspendedNow atomic.Int64

	cur atomic.Pointer[version]

	mu     sync.Mutex // guards everything below
	files  map[string]*fileState
	loops  map[*Loop]struct{}
	closed map[string]*counters // stats of closed loops, kept for Status
	loader *sandbox             // compiles and validates; used under mu only
	seq    uint64
	warned bool // missing Dir logged once

	life    sync.Mutex // guards started, stopped
	started bool
	stopped bool
	stop    chan struct{}
	done    chan struct{}
}

// SetLimits changes the time budget of a filter call and the per-loop cap on
// requests waiting in async filters (filters.budget, filters.max_suspended;
// 0 keeps the default). Calls that started keep the budget they had. Any
// goroutine.
func (r *Runtime) SetLimits(budget time.Duration, maxSuspended int) {
	if budget <= 0 {
		budget = DefaultBudget
	}
	if maxSuspended <= 0 {
		maxSuspended = DefaultMaxSuspended
	}
	r.budget.Store(int64(budget))
	r.loadBudget.Store(int64(max(20*budget, minLoadBudget)))
	r.maxSuspended.Store(int64(maxSuspended))
}

// callBudget is a filter call's time budget now.
func (r *Runtime) callBudget() time.Duration { return time.Duration(r.budget.Load()) }

// New loads every script under opts.Dir once. A bad script is logged and
// shown by Status, not fatal. New fails only when Dir is unusable: empty, not
// a directory, or unreadable. A missing Dir means no filters (logged) until it
// appears.
func New(opts Options) (*Runtime, error) {
	if opts.Dir == "" {
		return nil, errors.New("lua filters: no scripts directory")
	}
	if fi, err := os.Stat(opts.Dir); err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("lua filters: %s is not a directory", opts.Dir)
		}
		if _, err := os.ReadDir(opts.Dir); err != nil {
			return nil, fmt.Errorf("lua filters: read scripts directory: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lua filters: scripts directory: %w", err)
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxSuspended <= 0 {
		opts.MaxSuspended = DefaultMaxSuspended
	}
	r := &Runtime{
		opts:     opts,
		log:      opts.Log,
		maxStr:   max(opts.MaxBodyBytes, minStringCap),
		disabled: make(map[string]bool, len(opts.Disabled)),
		files:    make(map[string]*fileState),
		loops:    make(map[*Loop]struct{}),
		closed:   make(map[string]*counters),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	r.SetLimits(opts.Budget, opts.MaxSuspended)
	for _, name := range opts.Disabled {
		r.disabled[name] = true
	}
	r.goNames = make(map[string]bool, len(opts.GoFilters))
	for _, f := range opts.GoFilters {
		if !validName(f.Name()) || r.goNames[f.Name()] {
			return nil, fmt.Errorf("lua filters: go filter name %q is invalid or taken twice", f.Name())
		}
		if _, async := f.(filters.AsyncFilter); async && f.Phase() == filters.Outbound {
			return nil, fmt.Errorf("lua filters: go filter %q: async filters are inbound or endpoint", f.Name())
		}
		r.goNames[f.Name()] = true
	}
	r.loader = newSandbox(r.maxStr)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publish()
	r.scan()
	return r, nil
}

// Start starts hot reload: a goroutine polls Dir every 250ms and publishes a
// new filter set when a script was added, changed or deleted. Calling it
// again, or after Stop, does nothing.
func (r *Runtime) Start() {
	r.life.Lock()
	defer r.life.Unlock()
	if r.started || r.stopped {
		return
	}
	r.started = true
	go func() {
		defer close(r.done)
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.mu.Lock()
				r.scan()
				r.mu.Unlock()
			}
		}
	}()
}

// Rescan looks at the scripts directory now (what SIGHUP asks for), rather
// than at the next poll. Any goroutine.
func (r *Runtime) Rescan() {
	r.mu.Lock()
	r.scan()
	r.mu.Unlock()
}

// Stop stops hot reload and waits for its goroutine. Loops keep working with
// the filter set they have.
func (r *Runtime) Stop() {
	r.life.Lock()
	if !r.stopped {
		r.stopped = true
		close(r.stop)
	}
	started := r.started
	r.life.Unlock()
	if started {
		<-r.done
	}
}

// publish makes the scripts in service the current version (under mu).
func (r *Runtime) publish() {
	var list []*script
	for _, f := range r.files {
		if f.live != nil {
			list = append(list, f.live)
		}
	}
	slices.SortFunc(list, func(a, b *script) int {
		return cmp.Or(cmp.Compare(a.phase, b.phase), cmp.Compare(a.order, b.order), cmp.Compare(a.name, b.name))
	})
	r.seq++
	r.cur.Store(&version{seq: r.seq, scripts: list})
}

// Status lists every script file: those in service, and those refused (with
// the reason in LastError). Statistics are summed over all loops, per name.
func (r *Runtime) Status() []FilterStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	sums := make(map[string]*[4]int64)
	add := func(name string, c *counters) {
		s := sums[name]
		if s == nil {
			s = new([4]int64)
			sums[name] = s
		}
		s[0] += c.calls.Load()
		s[1] += c.errors.Load()
		s[2] += c.timeouts.Load()
		s[3] += c.nanos.Load()
	}
	for name, c := range r.closed {
		add(name, c)
	}
	for l := range r.loops {
		l.mu.Lock()
		for name, c := range l.stats {
			add(name, c)
		}
		l.mu.Unlock()
	}
	out := make([]FilterStatus, 0, len(r.files))
	for _, f := range r.files {
		st := FilterStatus{File: f.path, Type: f.phase.String(), LastError: f.lastErr}
		if s := f.live; s != nil {
			st.Name, st.Order, st.Hash, st.LoadedAt, st.Disabled = s.name, s.order, s.hash, s.loadedAt, s.disabled
			if c := sums[s.name]; c != nil {
				st.Calls, st.Errors, st.Timeouts, st.TotalTimeUS = c[0], c[1], c[2], c[3]/1000
			}
		} else if f.pending != nil {
			st.Name, st.Order = f.pending.name, f.pending.order
		}
		out = append(out, st)
	}
	for _, f := range r.opts.GoFilters {
		st := FilterStatus{Name: f.Name(), Type: f.Phase().String(), Order: f.Order(), File: "(go)", Disabled: r.disabled[f.Name()]}
		if c := sums[f.Name()]; c != nil {
			st.Calls, st.Errors, st.Timeouts, st.TotalTimeUS = c[0], c[1], c[2], c[3]/1000
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b FilterStatus) int {
		return cmp.Or(cmp.Compare(phaseRank(a.Type), phaseRank(b.Type)), cmp.Compare(a.Order, b.Order),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.File, b.File))
	})
	return out
}

func phaseRank(t string) int {
	switch t {
	case "inbound":
		return 0
	case "endpoint":
		return 1
	}
	return 2
}

// AsyncStatus is GET /admin/async: the requests waiting in async filters and
// the shared dictionaries.
type AsyncStatus struct {
	Suspended           int64                 `json:"suspended"`
	MaxSuspendedPerLoop int                   `json:"max_suspended_per_loop"`
	SharedDicts         map[string]dict.Stats `json:"shared_dicts_by_name"`
}

// Async reports AsyncStatus. Any goroutine.
func (r *Runtime) Async() AsyncStatus {
	return AsyncStatus{Suspended: r.suspendedNow.Load(), MaxSuspendedPerLoop: int(r.maxSuspended.Load()), SharedDicts: r.opts.Dicts.Stats()}
}
