package test

// The live dashboard (GET /dashboard) in a real browser: headless Chromium,
// driven over the DevTools protocol by chromedp, loads the page from a running
// gozer while the test sends traffic to a healthy origin, to one with a failing
// server, and to one that fails everything, and reads the page's DOM: the healthy origin's rate moves, the
// failing origin's breaker circle turns open (red) and its card comes first.
//
// Chromium is Debian's `chromium` (make deps installs it). Without it the test
// fails, except under -short, where it is skipped.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// startBrowser starts headless Chromium with a fresh profile and returns a
// tab's context; both end at cleanup.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if testing.Short() {
			t.Skipf("no %s (make deps installs it): %v", chromiumPath, err)
		}
		t.Fatalf("no %s: the dashboard test needs Chromium (make deps installs it: apt-get install chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1280, 860),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to end
	})
	return ctx
}

// dashTraffic sends GET to each url every interval until halt, from one
// goroutine.
type dashTraffic struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startDashTraffic(c *http.Client, interval time.Duration, urls ...string) *dashTraffic {
	tr := &dashTraffic{stop: make(chan struct{})}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
				for _, u := range urls {
					doGet(c, u)
				}
			}
		}
	}()
	return tr
}

func (tr *dashTraffic) halt() {
	close(tr.stop)
	tr.wg.Wait()
}

// dashField is a JS expression: the text of data-field f in origin o's card
// ("" when there is no such card yet).
func dashField(o, f string) string {
	return fmt.Sprintf(`((document.querySelector('[data-origin=%q] [data-field=%q]') || {}).textContent || "")`, o, f)
}

func TestDashboard(t *testing.T) {
	ctx := startBrowser(t)
	api := startFakeOrigin(t, "api", fakeServe)
	broken := startFakeOrigin(t, "broken", fakeFail)
	searchOK, searchBad := startFakeOrigin(t, "search-1", fakeServe), startFakeOrigin(t, "search-2", fakeFail)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "inbound"), 0o755); err != nil {
		t.Fatal(err)
	}
	tag := luaFilter("tag", "inbound", 10, "", `ctx.req.set_header("X-Dashboard-Test", "1")`)
	if err := os.WriteFile(filepath.Join(dir, "inbound", "10_tag.lua"), []byte(tag), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGozer(t, config{
		Origins: map[string]originConfig{
			"api": {Servers: []string{api.Addr}},
			"broken": {Servers: []string{broken.Addr}, Opts: map[string]string{
				"retries": "0", "outlier": "{consecutive_failures: -1}", // the breaker alone judges it
				"breaker": "{request_volume: 5, error_percent: 50, sleep_window: 60s}",
			}},
			// One of two servers fails: retries, then its ejection.
			"search": {Servers: []string{searchOK.Addr, searchBad.Addr}, Opts: map[string]string{
				"retries": "1", "breaker": "{enabled: false}", "outlier": "{consecutive_failures: 3}",
			}},
		},
		Routes: []route{{PathPrefix: "/broken", Origin: "broken"}, {PathPrefix: "/search", Origin: "search"},
			{PathPrefix: "/", Origin: "api"}},
		Filters: &filtersConfig{Dir: dir},
	})
	checkStreamHead(t, g)

	shot := os.Getenv("GOZER_SCREENSHOT")
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(g.adminURL("/dashboard")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-field="connection"]').dataset.state === "live"`,
			chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the dashboard did not go live within 10 s: %v", err)
	}
	t.Logf("dashboard live %v after navigating", time.Since(start).Round(time.Millisecond))

	c := isolationClient(t, 5*time.Second)
	healthy := startDashTraffic(c, 20*time.Millisecond, g.URL("/hello"), g.URL("/search?q=gozer"))
	defer healthy.halt()
	pollDOM(t, ctx, 10*time.Second, "the api card's rate > 0 and its p50, p99 known",
		`parseFloat(`+dashField("api", "rate")+`) > 0 && parseFloat(`+dashField("api", "p50")+`) > 0 &&
		 parseFloat(`+dashField("api", "p99")+`) > 0`)

	// The failing origin: its breaker opens after 5 failed requests; the
	// dashboard must show it open within 2 s of the admin API (issue 14).
	failing := startDashTraffic(c, 20*time.Millisecond, g.URL("/broken/x"))
	defer failing.halt()
	waitFor(t, 10*time.Second, "broken's breaker open in /admin/origins", func() bool {
		return g.adminOrigin(t, "broken").Breaker.State == "open"
	})
	opened := time.Now()
	pollDOM(t, ctx, 2*time.Second, "broken's breaker circle open within 2 s of the breaker opening",
		`document.querySelector('[data-origin="broken"] [data-field="breaker"]').dataset.state === "open"`)
	t.Logf("breaker open on the page %v after /admin/origins said so", time.Since(opened).Round(time.Millisecond))

	// Sick first; its error share shows the refusals; the healthy one is ok.
	pollDOM(t, ctx, 5*time.Second, "broken's card first, sick, with errors; api's ok",
		`document.querySelector('#origins').firstElementChild.dataset.origin === "broken" &&
		 document.querySelector('[data-origin="broken"]').dataset.status === "sick" &&
		 parseFloat(`+dashField("broken", "error-share")+`) > 0 &&
		 document.querySelector('[data-origin="api"]').dataset.status === "ok" &&
		 document.querySelector('[data-origin="api"] [data-field="breaker"]').dataset.state === "closed" &&
		 document.querySelector('[data-field="origins-sick"]').textContent === "1"`)
	// search retried its failing server's requests, then ejected it.
	pollDOM(t, ctx, 10*time.Second, "search: retries counted, one server ejected, its breaker disabled",
		`document.querySelector('[data-origin="search"]').dataset.status === "warn" &&
		 document.querySelector('[data-origin="search"] [data-field="breaker"]').dataset.state === "disabled" &&
		 Number(document.querySelector('[data-origin="search"] [data-field="retries"]').dataset.total) > 0 &&
		 `+dashField("search", "ejected")+` === "1"`)
	// The Lua filter's row counts its calls.
	pollDOM(t, ctx, 5*time.Second, "the tag filter's calls/s > 0",
		`parseFloat((document.querySelector('[data-filter="tag"] [data-field="calls-rate"]') || {}).textContent) > 0`)

	if shot != "" {
		screenshot(t, ctx, shot)
	}
}

// pollDOM waits until the JS expression cond is true in the page, and fails
// the test with what and the page's text when it is not within timeout.
func pollDOM(t *testing.T, ctx context.Context, timeout time.Duration, what, cond string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("after %v still not true: %s (%v)\npage:\n%s", timeout, what, err, tail(text, 3000))
	}
}

// checkStreamHead reads GET /dashboard/stream's head and first event with a
// plain client: SSE headers, the retry field, one JSON data line.
func checkStreamHead(t *testing.T, g *gozer) {
	t.Helper()
	resp, err := g.adminClient.Get(g.adminURL("/dashboard/stream"))
	if err != nil {
		t.Fatalf("GET /dashboard/stream: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("GET /dashboard/stream: %d %q; want 200 text/event-stream", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 3 { // "retry: …", "", "data: {…}" (the client's 10 s timeout bounds it)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream after %q: %v", lines, err)
		}
		lines = append(lines, strings.TrimRight(line, "\n"))
	}
	if !strings.HasPrefix(lines[0], "retry: ") || lines[1] != "" || !strings.HasPrefix(lines[2], `data: {"time":`) {
		t.Fatalf("stream began %q; want retry, blank line, data: {\"time\":…", lines)
	}
	var live any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &live); err != nil {
		t.Fatalf("the event is not JSON: %v: %s", err, lines[2])
	}
	doc, ok := docExamples(t)["GET /dashboard/stream"]
	if !ok {
		t.Fatal("docs/ADMIN.md has no example for GET /dashboard/stream")
	}
	compareShapes(t, "GET /dashboard/stream", doc, live, true)
}

// screenshot saves a PNG of the page to path (relative to the module root).
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(moduleRoot, path)
	}
	// Long enough for the sparklines to draw a few seconds of history.
	pollDOM(t, ctx, 30*time.Second, "20 s of history", `Number(document.body.dataset.events || 0) >= 20`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
