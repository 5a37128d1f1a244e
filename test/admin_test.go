package test

// The admin listener as an operator meets it: its JSON answers have the shape
// docs/ADMIN.md shows (key by key, in one dialect), its counters count what
// their names say, and Go's profiles are served only when the config asks.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docExamples returns the JSON examples of docs/ADMIN.md by their "GET /path"
// (the words after ```json on the fence line).
func docExamples(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "ADMIN.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	var name string
	var body strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case name == "" && strings.HasPrefix(line, "```json "):
			name = strings.TrimPrefix(line, "```json ")
			body.Reset()
		case name != "" && line == "```":
			var v any
			if err := json.Unmarshal([]byte(body.String()), &v); err != nil {
				t.Fatalf("docs/ADMIN.md: the example of %s is not JSON: %v", name, err)
			}
			out[name] = v
			name = ""
		case name != "":
			body.WriteString(line + "\n")
		}
	}
	return out
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// shape records the type at every key path of v ("[]" for a list's first
// element, "*" for any key of a map keyed by data) and reports keys that are
// not snake_case. A map is keyed by data when its key says "_by_".
func shape(v any, path string, out map[string]string, bad *[]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		data := strings.Contains(path[strings.LastIndex(path, ".")+1:], "_by_")
		for k, e := range x {
			if data {
				shape(e, path+".*", out, bad)
				continue
			}
			if !snakeKey.MatchString(k) {
				*bad = append(*bad, path+"."+k)
			}
			shape(e, path+"."+k, out, bad)
		}
	case []any:
		out[path] = "list"
		if len(x) > 0 {
			shape(x[0], path+"[]", out, bad)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

// TestAdminAnswersMatchTheDocs: GET /admin/origins, /admin/push,
// /admin/filters and /admin/edge answer with exactly the keys and types of docs/ADMIN.md's
// examples, all snake_case, and their counters count what was done.
func TestAdminAnswersMatchTheDocs(t *testing.T) {
	t.Parallel()
	g := pushGozer(t, nil)
	docs := docExamples(t)
	dev := dialWS(t, g, "doc-1", g.pushToken(t, "doc-1", "1h"))
	g.push(t, "doc-1", "hello", 200)
	dev.expectText(t, "hello")
	resp, err := newClient(t, 5*time.Second).Get(g.URL("/any")) // its origin is down: one 502
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	bad := dialRaw(t, g.ProxyAddr) // a head refused before any origin: /admin/edge counts it
	if resp, _ := bad.roundTrip("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"); resp.StatusCode != 400 {
		t.Fatalf("a request with two Host headers: status %d, want 400", resp.StatusCode)
	}

	for _, path := range []string{"/admin/origins", "/admin/push", "/admin/filters", "/admin/edge"} {
		t.Run(strings.TrimPrefix(path, "/admin/"), func(t *testing.T) { matchesDoc(t, docs, g, path) })
	}

	for name, want := range map[string]int64{
		"connections": 1, "clients": 1, "accepted_total": 1, "messages_sent_total": 1,
		"api.pushes_total": 1, "api.messages_queued_total": 1, "api.not_found_total": 0,
	} {
		if got := g.pushCounter(t, name); got != want {
			t.Errorf("/admin/push %s = %d, want %d", name, got, want)
		}
	}
	if n := g.adminOrigin(t, "demo").Requests["FAILURE_ORIGIN_CONNECTIVITY"]; n != 1 {
		t.Errorf("/admin/origins demo requests_by_cause %v, want one FAILURE_ORIGIN_CONNECTIVITY", g.adminOrigin(t, "demo").Requests)
	}
}

// matchesDoc compares the live answer of GET path with docs/ADMIN.md's
// example: the same keys with the same types, all snake_case.
func matchesDoc(t *testing.T, docs map[string]any, g *gozer, path string) {
	t.Helper()
	doc, ok := docs["GET "+path]
	if !ok {
		t.Fatalf("docs/ADMIN.md has no example for GET %s", path)
	}
	compareShapes(t, "GET "+path, doc, adminJSON(t, g, path), false)
}

// compareShapes reports every key of doc and live that the other lacks or
// holds with another type, and keys not in snake_case; with nullOK, a null
// on either side matches any type (a value that cannot be told yet).
func compareShapes(t *testing.T, name string, doc, live any, nullOK bool) {
	t.Helper()
	want, got := map[string]string{}, map[string]string{}
	var badDoc, badLive []string
	shape(doc, "", want, &badDoc)
	shape(live, "", got, &badLive)
	if len(badDoc)+len(badLive) > 0 {
		t.Errorf("%s: keys not in snake_case: docs %v, live %v", name, badDoc, badLive)
	}
	for _, k := range sortedKeys(want) {
		g, ok := got[k]
		if !ok || (g != want[k] && !(nullOK && (g == "null" || want[k] == "null"))) {
			t.Errorf("%s: key %q: live answer has %q, docs/ADMIN.md %q", name, k, g, want[k])
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: key %q (%s) of the live answer is not in docs/ADMIN.md", name, k, got[k])
		}
	}
}

func adminJSON(t *testing.T, g *gozer, path string) any {
	t.Helper()
	resp, b := fetch(t, g.adminClient, "GET", g.adminURL(path), nil, nil)
	var v any
	if resp.StatusCode != 200 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("GET %s: status %d, body %q", path, resp.StatusCode, tail(string(b), 500))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	return v
}

// TestAdminPprof: without listeners.admin.pprof the profiles are not served;
// with it, every link of the index answers, cmdline included.
func TestAdminPprof(t *testing.T) {
	t.Parallel()
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	off := startGozer(t, oneOrigin(nil, closedPort(t)))
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if st, _ := get("http://" + off.AdminAddr + p); st != 404 {
			t.Errorf("pprof off: GET %s = %d, want 404", p, st)
		}
	}

	cfg := oneOrigin(nil, closedPort(t))
	cfg.AdminPprof = true
	on := startGozer(t, cfg)
	base := "http://" + on.AdminAddr + "/debug/pprof/"
	st, index := get(base)
	if st != 200 {
		t.Fatalf("pprof on: GET /debug/pprof/ = %d", st)
	}
	links := regexp.MustCompile(`href='?"?([a-z]+)(\?[^'"]*)?['"]`).FindAllStringSubmatch(index, -1)
	var seen []string
	for _, l := range links {
		name := l[1]
		if slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
		url := base + name + "?debug=1"
		if name == "profile" || name == "trace" {
			url = base + name + "?seconds=1"
		}
		if st, body := get(url); st != 200 {
			t.Errorf("pprof on: index link %s answers %d: %s", name, st, tail(body, 200))
		}
	}
	for _, want := range []string{"cmdline", "heap", "goroutine", "profile"} {
		if !slices.Contains(seen, want) {
			t.Errorf("pprof index links %v: %s missing", seen, want)
		}
	}
	if st, body := get(base + "cmdline"); st != 200 || !strings.Contains(body, "gozer") {
		t.Errorf("GET /debug/pprof/cmdline = %d %q, want gozer's command line", st, body)
	}
}
