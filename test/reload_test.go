package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// configStatus is GET /admin/config.
type configStatus struct {
	Source     string `json:"source"`
	Hash       string `json:"hash"`
	Generation int64  `json:"generation"`
	Watching   bool   `json:"watching"`
	Reloads    int64  `json:"reloads_total"`
	Failures   int64  `json:"reload_failures_total"`
	Last       *struct {
		Trigger       string   `json:"trigger"`
		Result        string   `json:"result"`
		Error         string   `json:"error"`
		Hash          string   `json:"hash"`
		RestartNeeded []string `json:"restart_needed"`
		Origins       struct {
			Added, Changed, Removed, Kept []string
		} `json:"origins"`
	} `json:"last_attempt"`
}

func (g *gozer) configStatus(t testing.TB) configStatus {
	t.Helper()
	resp, b := fetch(t, g.adminClient, "GET", g.adminURL("/admin/config"), nil, nil)
	var st configStatus
	if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("GET /admin/config: %d %s", resp.StatusCode, tail(string(b), 500))
	}
	return st
}

// rewrite writes cfg as g's configuration file the way deployment tools do
// (a new file renamed over the old one).
func (g *gozer) rewrite(t testing.TB, cfg config) {
	t.Helper()
	g.rewriteRaw(t, cfg.render(g.ProxyAddr, g.AdminAddr))
}

func (g *gozer) rewriteRaw(t testing.TB, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(g.ConfigPath), ".gozer.yaml.new")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, g.ConfigPath); err != nil {
		t.Fatal(err)
	}
}

// reloadNow is POST /admin/config/reload: its status and answer.
func (g *gozer) reloadNow(t testing.TB) (int, string) {
	t.Helper()
	resp, b := fetch(t, g.adminClient, "POST", g.adminURL("/admin/config/reload"), nil, nil)
	return resp.StatusCode, string(b)
}

// load keeps sending GET path from n clients until stop; every answer that
// is not a 200 from the origin, and every transport error, is a failure.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstFail  string
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, url string, n int, hdr map[string]string) *load {
	l := &load{stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := newClient(t, 10*time.Second)
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Gozer-Status"))
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstFail == "" {
						l.firstFail = err.Error()
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) end() { l.stopOnce.Do(func() { close(l.stop) }); l.wg.Wait() }

// TestConfigReloadUnderLoad: while clients keep sending, a reload moves an
// origin to another server, changes another's read_timeout and adds a route;
// no request fails, the change serves from the reload's answer on, and
// neither the origin whose settings did not change nor the one whose server
// stayed opens a connection: their pooled ones go on.
func TestConfigReloadUnderLoad(t *testing.T) {
	t.Parallel()
	oldAPI, newAPI, static, tuned := startOrigin(t, "api-old"), startOrigin(t, "api-new"), startOrigin(t, "static"), startOrigin(t, "tuned")
	cfg := config{
		Origins: map[string]originConfig{
			"api":    {Servers: []string{oldAPI.Addr}},
			"static": {Servers: []string{static.Addr}},
			"tuned":  {Servers: []string{tuned.Addr}},
		},
		Routes: []route{{PathPrefix: "/seen", Origin: "static"}, {PathPrefix: "/counter", Origin: "api"}, {PathPrefix: "/status", Origin: "tuned"}},
	}
	g := startGozer(t, cfg)
	if st := g.configStatus(t); st.Generation != 1 || st.Source != g.ConfigPath || !st.Watching || st.Last != nil {
		t.Fatalf("at start GET /admin/config = %+v, want generation 1 from %s, watched, no attempt", st, g.ConfigPath)
	}

	// One sequential client on static and one on tuned: one pooled
	// connection each carries all of it, before and after the reload.
	staticLoad := startLoad(t, g.URL("/seen?id=reload-static"), 1, map[string]string{"X-Test-Id": "reload-static"})
	tunedLoad := startLoad(t, g.URL("/status?code=200"), 1, map[string]string{"X-Test-Id": "reload-tuned"})
	apiLoad := startLoad(t, g.URL("/counter"), 6, nil)
	defer apiLoad.end()
	defer staticLoad.end()
	defer tunedLoad.end()
	waitFor(t, 10*time.Second, "traffic to every origin", func() bool {
		return apiLoad.ok.Load() > 100 && staticLoad.ok.Load() > 50 && tunedLoad.ok.Load() > 50
	})
	before, tunedBefore := g.adminOrigin(t, "static").Servers[0], g.adminOrigin(t, "tuned").Servers[0]

	cfg.Origins["api"] = originConfig{Servers: []string{newAPI.Addr}}
	cfg.Origins["tuned"] = originConfig{Servers: []string{tuned.Addr}, Opts: map[string]string{"read_timeout": "20s"}}
	cfg.Routes = append(cfg.Routes, route{PathPrefix: "/headers", Origin: "api"})
	resp, _ := fetch(t, newClient(t, 5*time.Second), "GET", g.URL("/headers"), nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("before the reload /headers answered %d, want 404 (no route)", resp.StatusCode)
	}
	g.rewrite(t, cfg)
	if code, body := g.reloadNow(t); code != 200 || !strings.Contains(body, `"result": "applied"`) {
		t.Fatalf("POST /admin/config/reload = %d %s", code, body)
	}
	// Served by the new configuration from the answer on: no waiting.
	resp, _ = fetch(t, newClient(t, 5*time.Second), "GET", g.URL("/headers"), nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Origin-Name") != "api-new" {
		t.Fatalf("after the reload /headers = %d from %q, want 200 from api-new", resp.StatusCode, resp.Header.Get("X-Origin-Name"))
	}
	resp, _ = fetch(t, newClient(t, 5*time.Second), "GET", g.URL("/counter"), nil, nil)
	if from := resp.Header.Get("X-Origin-Name"); from != "api-new" {
		t.Fatalf("after the reload /counter came from %q, want api-new", from)
	}
	okAt, tunedAt := staticLoad.ok.Load(), tunedLoad.ok.Load()
	waitFor(t, 10*time.Second, "more traffic after the reload", func() bool {
		return staticLoad.ok.Load() > okAt+50 && tunedLoad.ok.Load() > tunedAt+50
	})
	apiLoad.end()
	staticLoad.end()
	tunedLoad.end()
	if n := apiLoad.failed.Load() + staticLoad.failed.Load() + tunedLoad.failed.Load(); n > 0 {
		t.Fatalf("%d requests failed across the reload (first: %s); %d, %d and %d succeeded", n,
			apiLoad.firstFail+staticLoad.firstFail+tunedLoad.firstFail, apiLoad.ok.Load(), staticLoad.ok.Load(), tunedLoad.ok.Load())
	}

	after := g.adminOrigin(t, "static").Servers[0]
	if after.Opened != before.Opened || after.Opened != 1 {
		t.Fatalf("static origin: %d connections opened before the reload, %d after; want the one pooled connection kept", before.Opened, after.Opened)
	}
	if after := g.adminOrigin(t, "tuned").Servers[0]; after.Opened != tunedBefore.Opened || after.Opened != 1 {
		t.Fatalf("tuned origin (read_timeout changed): %d connections opened before the reload, %d after; want its pooled connection kept", tunedBefore.Opened, after.Opened)
	}
	for _, o := range []*origin{static, tuned} {
		var seen struct{ Connections int }
		_, b := fetch(t, newClient(t, 5*time.Second), "GET", o.URL("/seen?id=reload-"+o.Name), nil, nil)
		if json.Unmarshal(b, &seen) != nil || seen.Connections != 1 {
			t.Fatalf("origin %s saw the test's requests on %s connections, want 1", o.Name, b)
		}
	}
	st := g.configStatus(t)
	if st.Generation != 2 || st.Last == nil || st.Last.Result != "applied" || st.Last.Trigger != "admin_api" ||
		strings.Join(st.Last.Origins.Changed, ",") != "api,tuned" || strings.Join(st.Last.Origins.Kept, ",") != "static" {
		t.Fatalf("GET /admin/config after the reload = %+v", st)
	}
	matchesDoc(t, docExamples(t), g, "/admin/config")
	if _, ok := g.adminOrigin(t, "api").server(newAPI.Addr); !ok {
		t.Fatal("GET /admin/origins does not show api's new server")
	}
	// The old server's pooled connections are closed by the loops' next tick.
	waitFor(t, 5*time.Second, "api-old's connections closed", func() bool {
		return tcpConnsTo(t, oldAPI.Addr) == 0
	})
}

// TestConfigReloadRefused: a configuration that fails validation, or that
// changes a setting only a restart can change, changes nothing; the refusal
// names the key (and line), and GET /admin/config shows it.
func TestConfigReloadRefused(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "refused")
	cfg := oneOrigin(nil, o.Addr)
	g := startGozer(t, cfg)
	start := g.configStatus(t)
	good := cfg.render(g.ProxyAddr, g.AdminAddr)

	tests := []struct {
		name, body string
		want       []string // in the refusal
	}{
		{"unknown key", strings.Replace(good, "  drain_timeout:", "  idel_timeout: 5s\n  drain_timeout:", 1),
			[]string{"server.idel_timeout", "line", `unknown key \"idel_timeout\"`}},
		{"invalid value", strings.Replace(good, "connect_timeout: 1s", "connect_timeout: soon", 1),
			[]string{"origins.demo.connect_timeout", "line"}},
		{"no servers", strings.Replace(good, fmt.Sprintf("servers: [%q]", o.Addr), "servers: []", 1),
			[]string{"origins.demo.servers (line "}},
		{"restart-only setting", strings.Replace(good, "event_loops: 2", "event_loops: 3", 1),
			[]string{"server.event_loops", "restart"}},
		{"not YAML", "origins: [", []string{"yaml"}},
	}
	for i, tc := range tests {
		g.rewriteRaw(t, tc.body)
		code, body := g.reloadNow(t)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"result": "refused"`) {
			t.Fatalf("%s: POST /admin/config/reload = %d %s, want 422 refused", tc.name, code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: the refusal does not say %q: %s", tc.name, w, body)
			}
		}
		st := g.configStatus(t)
		if st.Hash != start.Hash || st.Generation != 1 || st.Failures != int64(i+1) || st.Last == nil || st.Last.Result != "refused" {
			t.Fatalf("%s: GET /admin/config = %+v, want the start's config in service and the refusal counted", tc.name, st)
		}
		if resp, err := tryGet(g.ProxyAddr, "/counter", 5*time.Second); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: after the refusal: %v %v, want Gozer serving", tc.name, resp, err)
		}
	}
	g.waitLog(t, "configuration reload refused: the configuration in service is unchanged")
	fams := scrapeMetrics(t, g)
	if refused, applied, gen := value(t, fams, "gozer_config_reloads_total", "result", "refused"),
		value(t, fams, "gozer_config_reloads_total", "result", "applied"), value(t, fams, "gozer_config_generation"); refused != float64(len(tests)) || applied != 0 || gen != 1 {
		t.Fatalf("/metrics: %v reloads refused, %v applied, generation %v; want %d, 0, 1", refused, applied, gen, len(tests))
	}
}

// TestConfigReloadTriggers: a change of the file (watched) and SIGHUP reload
// it too; the same bytes again change nothing.
func TestConfigReloadTriggers(t *testing.T) {
	t.Parallel()
	a, b := startOrigin(t, "trigger-a"), startOrigin(t, "trigger-b")
	cfg := oneOrigin(nil, a.Addr)
	g := startGozer(t, cfg)
	from := func() string {
		resp, err := tryGet(g.ProxyAddr, "/counter", 5*time.Second)
		if err != nil {
			return err.Error()
		}
		return resp.Header.Get("X-Origin-Name")
	}

	cfg.Origins["demo"] = originConfig{Servers: []string{b.Addr}}
	g.rewrite(t, cfg)
	waitFor(t, 10*time.Second, "the watched file's change served", func() bool { return from() == "trigger-b" })
	if st := g.configStatus(t); st.Generation != 2 || st.Last.Trigger != "file_watch" {
		t.Fatalf("after the file changed: %+v, want generation 2 by file_watch", st)
	}
	if n := value(t, scrapeMetrics(t, g), "gozer_config_reloads_total", "result", "applied"); n != 1 {
		t.Fatalf("/metrics: %v reloads applied, want 1", n)
	}

	// SIGHUP with the same file: nothing to apply.
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "SIGHUP's attempt", func() bool {
		st := g.configStatus(t)
		return st.Last.Trigger == "sighup" && st.Last.Result == "unchanged" && st.Generation == 2
	})
	if from() != "trigger-b" || g.exited() {
		t.Fatal("SIGHUP with an unchanged file changed what serves")
	}
}

// TestConfigReloadRemovedOriginDrains: a reload that removes an origin lets
// the request in flight there finish with its answer; new requests no
// longer reach it, and its connection closes once the request is done.
func TestConfigReloadRemovedOriginDrains(t *testing.T) {
	t.Parallel()
	keep, gone := startOrigin(t, "drain-keep"), startOrigin(t, "drain-gone")
	cfg := config{
		Origins: map[string]originConfig{
			"keep": {Servers: []string{keep.Addr}},
			"gone": {Servers: []string{gone.Addr}},
		},
		Routes: []route{{PathPrefix: "/slow", Origin: "gone"}, {PathPrefix: "/", Origin: "keep"}},
	}
	g := startGozer(t, cfg)
	type answer struct {
		status int
		from   string
		err    error
	}
	inflight := make(chan answer, 1)
	go func() {
		resp, err := newClient(t, 15*time.Second).Get(g.URL("/slow?delay=2s"))
		if err != nil {
			inflight <- answer{err: err}
			return
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- answer{status: resp.StatusCode, from: resp.Header.Get("X-Origin-Name")}
	}()
	waitFor(t, 5*time.Second, "the slow request at origin gone", func() bool { return tcpConnsTo(t, gone.Addr) == 1 })

	delete(cfg.Origins, "gone")
	cfg.Routes = []route{{PathPrefix: "/", Origin: "keep"}}
	g.rewrite(t, cfg)
	if code, body := g.reloadNow(t); code != 200 {
		t.Fatalf("POST /admin/config/reload = %d %s", code, body)
	}
	if st := g.configStatus(t); strings.Join(st.Last.Origins.Removed, ",") != "gone" {
		t.Fatalf("GET /admin/config after the reload: %+v, want origin gone removed", st.Last)
	}
	resp, _ := fetch(t, newClient(t, 5*time.Second), "GET", g.URL("/slow?delay=1ms"), nil, nil)
	if from := resp.Header.Get("X-Origin-Name"); resp.StatusCode != 200 || from != "drain-keep" {
		t.Fatalf("after the reload /slow = %d from %q, want 200 from drain-keep", resp.StatusCode, from)
	}
	a := <-inflight
	if a.err != nil || a.status != 200 || a.from != "drain-gone" {
		t.Fatalf("the request in flight at the removed origin: %+v, want its 200 from drain-gone", a)
	}
	waitFor(t, 5*time.Second, "the removed origin's connection closed", func() bool { return tcpConnsTo(t, gone.Addr) == 0 })
}
