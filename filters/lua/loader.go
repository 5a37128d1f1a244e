package lua

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"gozer/filters"
)

const (
	// settle: a file whose mtime is this recent is read again even when its
	// size and mtime look unchanged (mtime granularity, editors writing in
	// place), so no change is missed.
	settle = 2 * time.Second
	// maxScriptBytes refuses absurd files before parsing them.
	maxScriptBytes = 1 << 20
)

var phases = []filters.Phase{filters.Inbound, filters.Endpoint, filters.Outbound}

// fileState is what the loader knows of one *.lua file. Guarded by Runtime.mu.
type fileState struct {
	path    string
	phase   filters.Phase
	size    int64
	mtime   time.Time
	readAt  time.Time
	hash    string  // of the content last read, in service or refused
	live    *script // the version in service (nil: none yet)
	pending *script // compiled fine but refused for a duplicate name; retried
	lastErr string
}

// scan looks for added, changed and deleted scripts and publishes a new
// version when the set in service changed. Called under r.mu.
func (r *Runtime) scan() {
	present := make(map[string]filters.Phase)
	listed := make(map[filters.Phase]bool) // phase directories read (or absent)
	for _, ph := range phases {
		dir := filepath.Join(r.opts.Dir, ph.String())
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Keep what is in service: a transient error must not unload filters.
			r.log.Warn().Err(err).Str("dir", dir).Msg("lua filters: cannot list directory")
			continue
		}
		listed[ph] = true
		for _, e := range ents {
			n := e.Name()
			if !strings.HasSuffix(n, ".lua") || n[0] == '.' || n[0] == '#' || e.IsDir() {
				continue // editor lock and swap files
			}
			present[filepath.Join(dir, n)] = ph
		}
	}
	if _, err := os.Stat(r.opts.Dir); err != nil && !r.warned {
		r.warned = true
		r.log.Warn().Str("dir", r.opts.Dir).Msg("lua filters: scripts directory missing, no filters until it appears")
	}

	changed := false
	for path, f := range r.files {
		if _, ok := present[path]; !ok && listed[f.phase] {
			delete(r.files, path)
			if f.live != nil {
				changed = true
				r.log.Info().Str("filter", f.live.name).Str("file", path).Msg("lua filter removed")
			}
		}
	}
	paths := make([]string, 0, len(present))
	for p := range present {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f := r.files[p]
		if f == nil {
			f = &fileState{path: p, phase: present[p]}
			r.files[p] = f
		}
		if r.check(f) {
			changed = true
		}
	}
	for _, p := range paths {
		if f := r.files[p]; f.pending != nil && r.accept(f, f.pending) {
			changed = true
		}
	}
	if changed {
		r.publish()
	}
}

// check reads f again if it may have changed, and compiles a new content.
// It reports whether f's version in service changed.
func (r *Runtime) check(f *fileState) bool {
	fi, err := os.Stat(f.path)
	if err != nil || fi.IsDir() {
		return false // gone since the listing (the next scan removes it), or a symlink to a directory
	}
	now := time.Now()
	if f.hash != "" && fi.Size() == f.size && fi.ModTime().Equal(f.mtime) && f.readAt.Sub(f.mtime) > settle {
		return false
	}
	var src []byte
	if fi.Size() <= maxScriptBytes {
		if src, err = os.ReadFile(f.path); err != nil {
			r.log.Warn().Err(err).Str("file", f.path).Msg("lua filters: cannot read script")
			return false
		}
	}
	f.size, f.mtime, f.readAt = fi.Size(), fi.ModTime(), now
	sum := sha256.Sum256(src)
	hash := hex.EncodeToString(sum[:8])
	if fi.Size() > maxScriptBytes {
		hash = fmt.Sprintf("size-%d-%d", fi.Size(), fi.ModTime().UnixNano())
	}
	if hash == f.hash {
		return false
	}
	f.hash = hash
	var s *script
	if fi.Size() > maxScriptBytes {
		err = fmt.Errorf("%s: script larger than %d bytes", f.path, maxScriptBytes)
	} else {
		s, err = r.compile(f, src, hash)
	}
	if err != nil {
		f.lastErr, f.pending = err.Error(), nil
		ev := r.log.Error().Str("file", f.path).Str("reason", f.lastErr)
		if f.live != nil {
			ev.Msg("lua filter refused; the previous version stays in service")
		} else {
			ev.Msg("lua filter refused")
		}
		return false
	}
	return r.accept(f, s)
}

// accept puts s in service for f unless another file's filter in service has
// the same name; then s waits in f.pending and f keeps its previous version.
func (r *Runtime) accept(f *fileState, s *script) bool {
	if r.goNames[s.name] {
		reason := fmt.Sprintf("%s: filter name %q is a built-in Go filter's", f.path, s.name)
		if f.lastErr != reason {
			r.log.Error().Str("file", f.path).Str("reason", reason).Msg("lua filter refused")
		}
		f.lastErr = reason
		return false
	}
	for _, g := range r.files {
		if g != f && g.live != nil && g.live.name == s.name {
			reason := fmt.Sprintf("%s: duplicate filter name %q, already used by %s", f.path, s.name, g.path)
			if f.pending != s || f.lastErr != reason {
				r.log.Error().Str("file", f.path).Str("reason", reason).Msg("lua filter refused")
			}
			f.pending, f.lastErr = s, reason
			return false
		}
	}
	f.live, f.pending, f.lastErr = s, nil, ""
	r.log.Info().Str("filter", s.name).Str("type", s.phase.String()).Int("order", s.order).
		Str("file", f.path).Str("hash", s.hash).Bool("disabled", s.disabled).Msg("lua filter loaded")
	return true
}

// compile parses and compiles src, runs its top level once in the loader's
// sandbox (under the load budget) and checks the table it returns.
func (r *Runtime) compile(f *fileState, src []byte, hash string) (*script, error) {
	chunk, err := parse.Parse(bytes.NewReader(src), f.path)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			if pe.Pos.Line == parse.EOF {
				return nil, fmt.Errorf("%s: %s at end of file", f.path, pe.Message)
			}
			return nil, fmt.Errorf("%s:%d: %s near '%s'", f.path, pe.Pos.Line, pe.Message, pe.Token)
		}
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	proto, err := glua.Compile(chunk, f.path)
	if err != nil {
		var ce *glua.CompileError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%s:%d: %s", f.path, ce.Line, ce.Message)
		}
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	sb := r.loader
	sb.say = func(msg string) { r.log.Debug().Str("file", f.path).Msg(msg) }
	v, err := runChunk(sb, proto, time.Duration(r.loadBudget.Load()))
	if err != nil {
		return nil, err
	}
	sp, err := readSpec(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	if sp.phase != f.phase {
		return nil, fmt.Errorf("%s: type %q does not match its directory %q", f.path, sp.phase, f.phase)
	}
	return &script{
		file: f.path, phase: sp.phase, name: sp.name, order: sp.order, fatal: sp.fatal, body: sp.body, async: sp.async,
		proto: proto, hash: hash, loadedAt: time.Now(), disabled: r.disabled[sp.name],
	}, nil
}

// runChunk instantiates proto in sb with a fresh environment, runs it under
// budget and returns what it returned.
func runChunk(sb *sandbox, proto *glua.FunctionProto, budget time.Duration) (glua.LValue, error) {
	L := sb.L
	fn := L.NewFunctionFromProto(proto)
	fn.Env = sb.newEnv()
	L.Push(fn)
	sb.wd.arm(budget)
	err := L.PCall(0, 1, nil)
	fired := sb.wd.disarm()
	if err != nil {
		L.SetTop(0)
		if fired {
			return nil, fmt.Errorf("%s (loading is limited to %v)", errText(err), budget)
		}
		return nil, errors.New(errText(err))
	}
	v := L.Get(-1)
	L.SetTop(0)
	return v, nil
}

// errText is a Lua error's message without gopher-lua's stack traceback: the
// message carries file:line already.
func errText(err error) string {
	var ae *glua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		return ae.Object.String()
	}
	return err.Error()
}

// spec is the table a script returns.
type spec struct {
	name        string
	phase       filters.Phase
	order       int
	fatal, body bool
	async       bool            // apply runs in a coroutine and may call ctx.http
	should      *glua.LFunction // nil: always apply
	apply       *glua.LFunction
}

// readSpec checks the table a script returned (raw reads only: no metamethod
// of the script runs here).
func readSpec(v glua.LValue) (spec, error) {
	var sp spec
	t, ok := v.(*glua.LTable)
	if !ok {
		return sp, fmt.Errorf("the script must return a filter table, it returned %s", v.Type())
	}
	name, ok := t.RawGetString("name").(glua.LString)
	if !ok || !validName(string(name)) {
		return sp, errors.New("name must be a string of 1-64 letters, digits, '_', '-' or '.'")
	}
	sp.name = string(name)
	switch typ := t.RawGetString("type"); typ {
	case glua.LString("inbound"):
		sp.phase = filters.Inbound
	case glua.LString("endpoint"):
		sp.phase = filters.Endpoint
	case glua.LString("outbound"):
		sp.phase = filters.Outbound
	default:
		return sp, fmt.Errorf(`type must be "inbound", "endpoint" or "outbound", not %s`, luaRepr(typ))
	}
	switch o := t.RawGetString("order").(type) {
	case *glua.LNilType:
	case glua.LNumber:
		if float64(o) != float64(int(o)) {
			return sp, fmt.Errorf("order must be an integer, not %v", o)
		}
		sp.order = int(o)
	default:
		return sp, fmt.Errorf("order must be an integer, not %s", luaRepr(o))
	}
	var err error
	if sp.should, err = optFunction(t, "should_filter"); err != nil {
		return sp, err
	}
	if sp.apply, err = optFunction(t, "apply"); err != nil {
		return sp, err
	}
	if sp.apply == nil {
		return sp, errors.New("apply must be a function")
	}
	if sp.fatal, err = optBool(t, "fatal"); err != nil {
		return sp, err
	}
	if sp.body, err = optBool(t, "body"); err != nil {
		return sp, err
	}
	if sp.async, err = optBool(t, "async"); err != nil {
		return sp, err
	}
	if sp.async && sp.phase == filters.Outbound {
		return sp, errors.New("async is for inbound and endpoint filters (outbound filters run on the response as it streams)")
	}
	return sp, nil
}

func optFunction(t *glua.LTable, key string) (*glua.LFunction, error) {
	switch v := t.RawGetString(key).(type) {
	case *glua.LNilType:
		return nil, nil
	case *glua.LFunction:
		return v, nil
	default:
		return nil, fmt.Errorf("%s must be a function, not %s", key, luaRepr(v))
	}
}

func optBool(t *glua.LTable, key string) (bool, error) {
	switch v := t.RawGetString(key).(type) {
	case *glua.LNilType:
		return false, nil
	case glua.LBool:
		return bool(v), nil
	default:
		return false, fmt.Errorf("%s must be true or false, not %s", key, luaRepr(v))
	}
}

func luaRepr(v glua.LValue) string {
	if s, ok := v.(glua.LString); ok {
		return fmt.Sprintf("%q", string(s))
	}
	if v.Type() == glua.LTNumber || v.Type() == glua.LTBool || v.Type() == glua.LTNil {
		return v.String()
	}
	return "a " + v.Type().String()
}

func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
