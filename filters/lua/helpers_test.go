package lua

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	glua "github.com/yuin/gopher-lua"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

// logBuf collects JSON log lines; safe for the loader goroutine and the test.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the log lines decoded.
func (l *logBuf) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// find returns the first line whose field key contains sub.
func (l *logBuf) find(key, sub string) map[string]any {
	for _, m := range l.lines() {
		if s, ok := m[key].(string); ok && strings.Contains(s, sub) {
			return m
		}
	}
	return nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeScript writes dir/phase/file with src.
func writeScript(t testing.TB, dir, phase, file, src string) string {
	t.Helper()
	p := filepath.Join(dir, phase, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// filterSrc is a filter script of phase type named name whose apply runs code.
func filterSrc(name, typ string, order int, decl, code string) string {
	return fmt.Sprintf("return {\n  name = %q, type = %q, order = %d, %s\n  apply = function(ctx)\n%s\n  end,\n}\n",
		name, typ, order, decl, code)
}

type env struct {
	dir  string
	rt   *Runtime
	loop *Loop
	log  *logBuf
}

// newEnv starts a runtime over a temp dir holding scripts ("phase/file" →
// source) and one loop.
func newEnv(t testing.TB, scripts map[string]string, opts Options) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), log: &logBuf{}}
	for k, src := range scripts {
		phase, file, _ := strings.Cut(k, "/")
		writeScript(t, e.dir, phase, file, src)
	}
	opts.Dir = e.dir
	if opts.Budget == 0 {
		// The budget is wall-clock time: on a loaded test machine (race
		// detector, other packages' tests) 5ms is not always enough for a
		// trivial filter. Budget tests set their own.
		opts.Budget = 2 * time.Second
	}
	opts.Log = zerolog.New(e.log).Level(zerolog.DebugLevel)
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	e.rt = rt
	e.loop = rt.NewLoop()
	return e
}

const testHead = "GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n"

// newCtx returns a request context for head (testHead when empty).
func newCtx(t testing.TB, head string, log *zerolog.Logger) *filters.Context {
	t.Helper()
	if head == "" {
		head = testHead
	}
	req := &httpcodec.Request{}
	if err := req.Parse([]byte(head)); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return &filters.Context{Req: req, RemoteAddr: "10.0.0.1:5555", Proto: "HTTP/2.0", ID: []byte("req-1"), TraceID: []byte("4bf92f3577b34da6a3ce929d0e0e4736"), Log: log}
}

const testRespHead = "HTTP/1.1 200 OK\r\nServer: origin\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"

func newResp(t testing.TB) *httpcodec.Response {
	t.Helper()
	r := &httpcodec.Response{}
	if err := r.Parse([]byte(testRespHead), false); err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return r
}

// vars returns ctx.vars[key] as Go text ("" when unset).
func vars(ctx *filters.Context, key string) string {
	vt, ok := ctx.Vars.(*varsTable)
	if !ok || !vt.inUse {
		return ""
	}
	v := vt.t.RawGetString(key)
	if v == glua.LNil {
		return ""
	}
	return v.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// status returns the Status entry of filter name (or of a file ending in name).
func status(rt *Runtime, name string) (FilterStatus, bool) {
	for _, s := range rt.Status() {
		if s.Name == name || strings.HasSuffix(s.File, name) {
			return s, true
		}
	}
	return FilterStatus{}, false
}
