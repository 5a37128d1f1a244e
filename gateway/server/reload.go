package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gozer/filters"
	"gozer/gateway/admin"
	"gozer/gateway/config"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
	"gozer/gateway/push"
)

// Reload triggers: what asked for a reload (GET /admin/config shows it).
const (
	TriggerSignal = "sighup"
	TriggerWatch  = "file_watch"
	TriggerAdmin  = "admin_api"
)

// Reload results.
const (
	ResultApplied   = "applied"
	ResultUnchanged = "unchanged" // the same bytes as the config in service
	ResultRefused   = "refused"   // invalid, or a restart-only setting changed: nothing changed
)

// Attempt is one reload attempt, as GET /admin/config and POST
// /admin/config/reload show it.
type Attempt struct {
	At       time.Time      `json:"at"`
	Trigger  string         `json:"trigger"`
	Result   string         `json:"result"`
	Error    string         `json:"error"`
	Hash     string         `json:"hash"` // sha256 of the file read ("" when it could not be read)
	TookMs   float64        `json:"took_ms"`
	Origins  origin.Changes `json:"origins"`
	Sections []string       `json:"changed_sections"` // top-level keys whose values changed
	// RestartNeeded names the settings that changed but only take effect with
	// a restart: their change refused the reload.
	RestartNeeded []string `json:"restart_needed"`
}

// ConfigStatus is GET /admin/config: the configuration in service and the
// last reload attempt.
type ConfigStatus struct {
	Source     string    `json:"source"`
	Hash       string    `json:"hash"`
	LoadedAt   time.Time `json:"loaded_at"`
	Generation int64     `json:"generation"` // 1 at start, one more per applied reload
	Watching   bool      `json:"watching"`   // the file is watched for changes
	Reloads    int64     `json:"reloads_total"`
	Failures   int64     `json:"reload_failures_total"`
	Last       *Attempt  `json:"last_attempt"`
}

// reloader swaps reloaded configurations in. Reloads are serialized by mu;
// Status may be called from any goroutine.
type reloader struct {
	s    *Server
	path string // "" for the embedded conf/gozer.yaml

	mu       sync.Mutex // serializes reloads; guards the fields below
	hash     string
	loadedAt time.Time
	gen      int64
	last     *Attempt
	watching bool

	reloads, failures atomic.Int64
}

func newReloader(s *Server, path string, data []byte) *reloader {
	return &reloader{s: s, path: path, hash: hashOf(data), loadedAt: time.Now(), gen: 1}
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (r *reloader) source() string {
	if r.path == "" {
		return config.EmbeddedName
	}
	return r.path
}

// Status is the configuration in service and the last attempt.
func (r *reloader) Status() ConfigStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ConfigStatus{Source: r.source(), Hash: r.hash, LoadedAt: r.loadedAt, Generation: r.gen,
		Watching: r.watching, Reloads: r.reloads.Load(), Failures: r.failures.Load(), Last: r.last}
}

// Reload reads the configuration again and swaps it in when it is valid and
// changes only what can change while serving; otherwise nothing changes.
func (r *reloader) Reload(trigger string) Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	a := Attempt{At: start, Trigger: trigger, Sections: []string{}, RestartNeeded: []string{}, Origins: origin.NoChanges()}
	err := r.apply(&a)
	a.TookMs = float64(time.Since(start).Microseconds()) / 1000
	switch {
	case err != nil:
		a.Result, a.Error = ResultRefused, err.Error()
		r.failures.Add(1)
		r.s.log.Error().Str("trigger", trigger).Str("config", r.source()).Strs("restart_needed", a.RestartNeeded).
			Str("reason", a.Error).Msg("configuration reload refused: the configuration in service is unchanged")
	case a.Result == ResultUnchanged:
		r.s.log.Info().Str("trigger", trigger).Str("config", r.source()).Msg("configuration reload: unchanged")
	default:
		a.Result = ResultApplied
		r.reloads.Add(1)
		r.gen++
		r.hash, r.loadedAt = a.Hash, start
		ev := r.s.log.Info().Str("trigger", trigger).Str("config", r.source()).Int64("generation", r.gen).
			Strs("sections", a.Sections).Float64("took_ms", a.TookMs)
		o := a.Origins
		ev.Strs("origins_added", o.Added).Strs("origins_changed", o.Changed).Strs("origins_removed", o.Removed).Msg("configuration reloaded")
	}
	r.last = &a
	return a
}

// apply does the reload's work; a returned error means nothing changed.
func (r *reloader) apply(a *Attempt) error {
	data, name, err := config.Read(r.path)
	if err != nil {
		return err
	}
	a.Hash = hashOf(data)
	if a.Hash == r.hash {
		a.Result = ResultUnchanged
		return nil
	}
	cfg, err := config.Parse(data, name)
	if err != nil {
		return err
	}
	prev := r.s.shared.Snapshot()
	if keys := restartOnly(prev.Config, cfg); len(keys) > 0 {
		a.RestartNeeded = keys
		return fmt.Errorf("these settings change only with a restart: %v (put them back, or restart)", a.RestartNeeded)
	}
	a.Sections = append(a.Sections, changedSections(prev.Config, cfg)...)
	tab, ch, err := origin.Rebuild(prev.Origins, cfg.Origins)
	if err != nil {
		return fmt.Errorf("origins: %w", err)
	}
	a.Origins = ch
	r.swap(prev, loop.NewSnapshot(cfg, tab, filters.NewRouteTable(cfg.Routes)))
	return nil
}

// swap puts next in service in place of prev: everything that reads the
// configuration per request or per connection sees it from now on.
func (r *reloader) swap(prev, next *loop.Snapshot) {
	s, cfg := r.s, next.Config
	names := make([]string, len(next.Origins.List))
	for i, o := range next.Origins.List {
		names[i] = o.Name
	}
	s.counts.Ensure(names)
	s.shared.Swap(next)
	if s.filters != nil {
		s.filters.SetLimits(cfg.Filters.Budget, cfg.Filters.MaxSuspended)
	}
	s.hub.SetLimits(&cfg.Push)
	s.hub.API.SetAuth(push.AuthOf(&cfg.Push))
	if up, ok := next.Origins.Get(cfg.Push.UpstreamOrigin); ok {
		s.hub.Sender.SetOrigin(up)
	}
	origin.Activate(prev.Origins, next.Origins)
	// The tick forwards the table in service only: what the replaced table's
	// breakers queued goes now (the ones carried over are in both).
	prev.Origins.ForwardSamples()
}

// restartOnly names the settings that differ between the configuration in
// service and a new one but cannot change while serving: the listeners
// (their sockets and certificate stores are bound at start), the event
// loops, the node-wide buffer budget, the logs, the Lua runtime's directory,
// disabled list, string cap and dictionaries, and push (its hub, paths,
// cluster, API and topic limits, push.topics, are built once) but for its
// connection limits
// (push.ConnLimits: max_outbound_bytes, ping_interval, max_lifetime,
// lifetime_dither), which apply to the next message, ping or connection,
// its CORS policy (push.cors: read per request from the snapshot, as
// cors and routes[].cors are) and who may call the push API (push.api:
// tokens and allow-list, swapped atomically; $GOZER_PUSH_API_TOKEN is
// read again too).
func restartOnly(old, cur *config.Config) []string {
	var keys []string
	keys = append(keys, diffFields("listeners.proxy", old.Listeners.Proxy, cur.Listeners.Proxy,
		"trust_forwarded", "redirect_https", "redirect_except", "h2c")...)
	keys = append(keys, diffFields("listeners.https", old.Listeners.HTTPS, cur.Listeners.HTTPS)...)
	keys = append(keys, diffFields("listeners.admin", old.Listeners.Admin, cur.Listeners.Admin)...)
	keys = append(keys, diffFields("log", old.Log, cur.Log)...)
	keys = append(keys, diffFields("limits", old.Limits, cur.Limits, "rules")...)
	keys = append(keys, diffFields("push", old.Push, cur.Push,
		"max_outbound_bytes", "ping_interval", "max_lifetime", "lifetime_dither", "cors", "api")...)
	checks := []struct {
		key  string
		a, b any
	}{
		{"server.event_loops", old.Server.EventLoops, cur.Server.EventLoops},
		{"server.accept_on_loops", old.Server.AcceptOnLoops, cur.Server.AcceptOnLoops},
		{"server.max_buffered_total", old.Server.MaxBufferedTotal, cur.Server.MaxBufferedTotal},
		{"server.memory_reclaim_interval", old.Server.MemoryReclaimInterval, cur.Server.MemoryReclaimInterval},
		{"filters.dir", old.Filters.Dir, cur.Filters.Dir},
		{"filters.disabled", old.Filters.Disabled, cur.Filters.Disabled},
		{"filters.max_body_bytes", old.Filters.MaxBodyBytes, cur.Filters.MaxBodyBytes},
		{"filters.shared_dicts", old.Filters.SharedDicts, cur.Filters.SharedDicts},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.a, c.b) {
			keys = append(keys, c.key)
		}
	}
	return keys
}

// diffFields names (prefix.yaml_key) the fields of structs a and b that
// differ, but for those named in live.
func diffFields(prefix string, a, b any, live ...string) []string {
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range av.NumField() {
		f := av.Type().Field(i)
		name := yamlName(f)
		if !f.IsExported() || slices.Contains(live, name) {
			continue
		}
		if !reflect.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			out = append(out, prefix+"."+name)
		}
	}
	return out
}

// changedSections names the top-level sections whose values differ.
func changedSections(old, cur *config.Config) []string {
	var out []string
	ov, cv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem()
	for i := range ov.NumField() {
		if !reflect.DeepEqual(ov.Field(i).Interface(), cv.Field(i).Interface()) {
			out = append(out, yamlName(ov.Type().Field(i)))
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	if tag := f.Tag.Get("yaml"); tag != "" {
		return tag
	}
	return f.Name
}

// startConfigWatch watches the configuration file when SetConfigSource asked.
func (s *Server) startConfigWatch() {
	if s.reload == nil || !s.reload.watching {
		return
	}
	cw, err := watchConfig(s.reload)
	if err != nil {
		s.reload.mu.Lock()
		s.reload.watching = false
		s.reload.mu.Unlock()
		s.log.Warn().Err(err).Msg("configuration file not watched: reload it with SIGHUP or POST /admin/config/reload")
		return
	}
	s.cfgWatch = cw
}

// configControl is the admin API's side of the reloader (nil without one).
func (s *Server) configControl() admin.ConfigControl {
	if s.reload == nil {
		return nil
	}
	return configControl{s.reload}
}

type configControl struct{ r *reloader }

func (c configControl) ConfigStatus() any { return c.r.Status() }

func (c configControl) ReloadStats() admin.ReloadStats {
	st := c.r.Status()
	return admin.ReloadStats{Applied: st.Reloads, Refused: st.Failures, Generation: st.Generation, LoadedAt: st.LoadedAt}
}

func (c configControl) ReloadConfig() (any, bool) {
	a := c.r.Reload(TriggerAdmin)
	return a, a.Result != ResultRefused
}
