package test

// Hot reload of Lua filters while Gozer serves: changes visible on every keep-alive
// connection with no failed request, and broken scripts refused.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadConn is one keep-alive client connection that sends GET /headers in a loop
// and records, for each step of a reload scenario, when it first saw it.
type loadConn struct {
	conn     net.Conn
	br       *bufio.Reader
	steps    []func(http.Header) bool // step k is reached when steps[0..k] all hold
	reached  atomic.Int64             // steps reached so far (0: none)
	firstAt  []atomic.Int64           // unix nanos when step k was first reached
	requests atomic.Int64
	failed   atomic.Bool
	err      error // the first failure; read it only once run has returned
}

// run sends requests until stop is closed or a request fails.
func (c *loadConn) run(stop <-chan struct{}) {
	defer func() { c.failed.Store(c.err != nil) }()
	req := []byte("GET /headers HTTP/1.1\r\nHost: reload.test\r\n\r\n")
	for {
		select {
		case <-stop:
			return
		default:
		}
		_ = c.conn.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := c.conn.Write(req); err != nil {
			c.err = fmt.Errorf("request %d: write: %w", c.requests.Load()+1, err)
			return
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			c.err = fmt.Errorf("request %d: read response: %w", c.requests.Load()+1, err)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		n := c.requests.Add(1)
		var v originView
		switch {
		case err != nil:
			c.err = fmt.Errorf("request %d: incomplete body (%d bytes): %w", n, len(body), err)
		case resp.StatusCode != 200:
			c.err = fmt.Errorf("request %d: status %d, X-Gozer-Status %q, body %q", n, resp.StatusCode,
				resp.Header.Get("X-Gozer-Status"), tail(string(body), 200))
		case json.Unmarshal(body, &v) != nil || v.URI != "/headers":
			c.err = fmt.Errorf("request %d: not the origin's /headers answer: %q", n, tail(string(body), 200))
		case resp.Close:
			c.err = fmt.Errorf("request %d: the gateway closed the keep-alive connection", n)
		}
		if c.err != nil {
			return
		}
		k := 0
		for k < len(c.steps) && c.steps[k](resp.Header) {
			k++
		}
		prev := int(c.reached.Load())
		if k < prev {
			c.err = fmt.Errorf("request %d: went back from step %d to step %d (headers %v): an older filter set served after a newer one",
				n, prev, k, resp.Header)
			return
		}
		now := time.Now().UnixNano()
		for j := prev; j < k; j++ {
			c.firstAt[j].Store(now)
		}
		c.reached.Store(int64(k))
	}
}

// TestLuaReloadUnderLoad: eight keep-alive connections send requests back to back
// while an outbound script is rewritten 20 times (alternately in place and by rename),
// then a filter file is added and another deleted. No request fails, no connection
// is closed, and each change shows on every connection within reloadDeadline (the
// spec says one second; the measured delays are logged).
func TestLuaReloadUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		conns    = 8
		versions = 20
	)
	d := newScriptDir(t)
	version := func(k int) string {
		return luaFilter("version", "outbound", 10, "", fmt.Sprintf(`ctx.resp.set_header("X-Version", "%d")`, k))
	}
	d.write(t, "outbound", "10_version.lua", version(0))
	d.write(t, "outbound", "20_doomed.lua", luaFilter("doomed", "outbound", 20, "", `ctx.resp.set_header("X-Doomed", "yes")`))
	d.write(t, "inbound", "10_edge.lua", luaFilter("edge", "inbound", 10, "", `ctx.req.set_header("X-Edge", "1")`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "o"})

	// The scenario: steps 1..versions are "X-Version is at least k"; then the added
	// filter's header appears; then the deleted filter's header is gone.
	var steps []func(http.Header) bool
	for k := 1; k <= versions; k++ {
		steps = append(steps, func(h http.Header) bool {
			v, err := strconv.Atoi(h.Get("X-Version"))
			return err == nil && v >= k
		})
	}
	steps = append(steps,
		func(h http.Header) bool { return h.Get("X-Added") == "yes" },
		func(h http.Header) bool { return h.Get("X-Doomed") == "" },
	)
	actions := make([]func(), 0, len(steps))
	for k := 1; k <= versions; k++ {
		actions = append(actions, func() {
			if k%2 == 0 {
				d.write(t, "outbound", "10_version.lua", version(k))
			} else {
				d.writeInPlace(t, "outbound", "10_version.lua", version(k))
			}
		})
	}
	actions = append(actions,
		func() {
			d.write(t, "outbound", "30_added.lua", luaFilter("added", "outbound", 30, "", `ctx.resp.set_header("X-Added", "yes")`))
		},
		func() { d.remove(t, "outbound", "20_doomed.lua") },
	)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	cs := make([]*loadConn, conns)
	for i := range cs {
		nc, err := net.DialTimeout("tcp", g.ProxyAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		c := &loadConn{conn: nc, br: bufio.NewReader(nc), steps: steps, firstAt: make([]atomic.Int64, len(steps))}
		cs[i] = c
		wg.Add(1)
		go func() { defer wg.Done(); c.run(stop) }()
	}
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()

	// Let every connection get going on version 0 first.
	waitFor(t, 5*time.Second, "every connection answered", func() bool {
		for _, c := range cs {
			if c.requests.Load() == 0 && !c.failed.Load() {
				return false
			}
		}
		return true
	})

	var worst time.Duration
	worstStep := 0
	for k, act := range actions {
		wrote := time.Now()
		act()
		all := eventually(reloadDeadline, func() bool {
			for _, c := range cs {
				if c.reached.Load() <= int64(k) {
					return false
				}
			}
			return true
		})
		if !all {
			halt()
			for i, c := range cs {
				if c.reached.Load() <= int64(k) {
					t.Errorf("connection %d: change %d (of %d) not visible after %v (%d requests; error: %v)",
						i, k+1, len(actions), reloadDeadline, c.requests.Load(), c.err)
				}
			}
			t.FailNow()
		}
		for _, c := range cs {
			if delay := time.Duration(c.firstAt[k].Load() - wrote.UnixNano()); delay > worst {
				worst, worstStep = delay, k+1
			}
		}
	}
	// A few more requests on every connection with the final filter set, then stop.
	var after []int64
	for _, c := range cs {
		after = append(after, c.requests.Load())
	}
	waitFor(t, 5*time.Second, "every connection served 5 more requests", func() bool {
		for i, c := range cs {
			if c.requests.Load() < after[i]+5 && !c.failed.Load() {
				return false
			}
		}
		return true
	})
	halt()

	var total int64
	for i, c := range cs {
		total += c.requests.Load()
		if c.err != nil {
			t.Errorf("connection %d: %v", i, c.err)
		}
	}
	t.Logf("%d requests on %d keep-alive connections across %d filter changes; worst delay until a change showed on a connection: %v (change %d)",
		total, conns, len(actions), worst, worstStep)
	if worst > time.Second {
		t.Logf("note: the spec promises changes within 1 s; the worst delay measured here was %v", worst)
	}
	// The inbound filter that was never touched kept working throughout.
	resp, body := fetch(t, newClient(t, 10*time.Second), "GET", g.URL("/headers"), nil, nil)
	if v := decodeView(t, body); resp.StatusCode != 200 || v.Headers.Get("X-Edge") != "1" {
		t.Errorf("after the reloads: status %d, origin got X-Edge %q, want 1", resp.StatusCode, v.Headers.Get("X-Edge"))
	}
}

// TestLuaFilterBrokenScriptRefused: a script that does not compile, raises while
// loading, returns no filter table or reuses another filter's name is refused: the
// previous version keeps serving, the process log names the file (and line) and the
// reason, /admin/filters shows the reason as last_error; fixing the file puts the
// new version in service.
func TestLuaFilterBrokenScriptRefused(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "outbound", "00_dup_a.lua", luaFilter("dup_a", "outbound", 0, "", `ctx.resp.set_header("X-Dup-A", "yes")`))
	o := startOrigin(t, "o")
	g := luaGozer(t, d, filtersConfig{}, servers(o), route{PathPrefix: "/", Origin: "o"})

	// Each row owns the outbound file NAME.lua, filter NAME, header X-NAME.
	tests := []struct {
		name   string
		broken string   // the refused content (it would set X-NAME: broken)
		reason []string // in the log line and in last_error; FILE stands for the path
	}{
		{"syntax", "return {\n  name = \"syntax\", type = \"outbound\",\n  apply = function(ctx)\n    local x = = 1\n  end,\n}\n",
			[]string{"FILE:4:"}},
		{"raises", "error(\"not today\")\nreturn {}\n", []string{"FILE:1:", "not today"}},
		{"number", "return 42\n", []string{"FILE", "must return a filter table"}},
		{"no_apply", "return { name = \"no_apply\", type = \"outbound\" }\n", []string{"FILE", "apply"}},
		{"wrong_dir", luaFilter("wrong_dir", "inbound", 0, "", `ctx.req.set_header("X-Wrong-Dir", "broken")`),
			[]string{"FILE", "does not match its directory"}},
		{"duplicate", luaFilter("dup_a", "outbound", 5, "", `ctx.resp.set_header("X-Duplicate", "broken")`),
			[]string{"FILE", "duplicate filter name", "dup_a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, 10*time.Second)
			file := tc.name + ".lua"
			path := d.path("outbound", file)
			header := "X-" + tc.name
			good := func(v string) string {
				return luaFilter(tc.name, "outbound", 50, "", fmt.Sprintf(`ctx.resp.set_header(%q, %q)`, header, v))
			}
			url := g.URL("/headers")

			d.write(t, "outbound", file, good("v1"))
			waitHeader(t, c, url, header, "v1")
			v1, _ := g.adminFile(t, path)

			d.write(t, "outbound", file, tc.broken)
			var st filterStatus
			waitFor(t, reloadDeadline, "/admin/filters shows last_error for "+path, func() bool {
				st, _ = g.adminFile(t, path)
				return st.LastError != ""
			})
			want := make([]string, len(tc.reason))
			for i, r := range tc.reason {
				want[i] = strings.ReplaceAll(r, "FILE", path)
			}
			t.Logf("last_error: %s", st.LastError)
			if !containsAll(st.LastError, want) {
				t.Errorf("last_error = %q, want it to contain %q", st.LastError, want)
			}
			if st.Hash != v1.Hash || st.Name != tc.name {
				t.Errorf("/admin/filters after the refusal: name %q hash %q, want the version in service (%q, %q)",
					st.Name, st.Hash, tc.name, v1.Hash)
			}
			line := g.waitLog(t, append([]string{"refused"}, want...)...)
			if lvl, _ := line.fields["level"].(string); lvl != "error" {
				t.Errorf("refusal logged at level %q, want error: %s", lvl, line.text)
			}
			for i := range 3 {
				resp, body := fetch(t, c, "GET", url, nil, nil)
				if resp.StatusCode != 200 || resp.Header.Get(header) != "v1" {
					t.Fatalf("request %d after the refusal: status %d, %s = %q, want 200 and v1 (the previous version); body %q",
						i, resp.StatusCode, header, resp.Header.Get(header), tail(string(body), 200))
				}
			}

			d.write(t, "outbound", file, good("v2"))
			waitHeader(t, c, url, header, "v2")
			if st, _ := g.adminFile(t, path); st.LastError != "" || st.Hash == v1.Hash {
				t.Errorf("/admin/filters after the fix: last_error %q, hash %q (v1 %q): want no error and a new hash",
					st.LastError, st.Hash, v1.Hash)
			}
		})
	}
}

// TestFiltersDirAppearsLater: a filters.dir that does not exist at start
// (a volume mounted after the process, another working directory) leaves
// the Go filters running (a route's CORS policy is applied), and the
// scripts load once it appears. Gozer used to start with no filter chain
// at all then, route CORS included, until a restart.
func TestFiltersDirAppearsLater(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "late-dir")
	dir := filepath.Join(t.TempDir(), "scripts")
	cfg := oneOrigin(nil, o.Addr)
	cfg.Routes[0].CORS = "web"
	cfg.CORS = map[string]string{"web": `{allow_origins: ["https://app.example"]}`}
	cfg.Filters = &filtersConfig{Dir: dir, Budget: "1s"}
	g := startGozer(t, cfg)
	c := newClient(t, 10*time.Second)
	resp, _ := fetch(t, c, "GET", g.URL("/"), nil, map[string]string{"Origin": "https://app.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != 200 || got != "https://app.example" {
		t.Fatalf("with filters.dir missing: %d, Access-Control-Allow-Origin %q; want 200 and the route's CORS applied", resp.StatusCode, got)
	}
	d := scriptDir(dir)
	for _, ph := range []string{"inbound", "endpoint", "outbound"} {
		if err := os.MkdirAll(d.path(ph, ""), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d.write(t, "inbound", "10_deny.lua", luaFilter("deny", "inbound", 10, "true", `ctx.respond(401, "no")`))
	waitFor(t, 10*time.Second, "the scripts to load once their directory appeared", func() bool {
		resp, _ := fetch(t, c, "GET", g.URL("/"), nil, nil)
		return resp.StatusCode == 401
	})
}
