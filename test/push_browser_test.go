package test

// Push and CORS in a real browser (issue 18): headless Chromium (startBrowser,
// dashboard_test.go) loads a page from one origin, http://localhost:P, served
// by a small Go server, while Gozer listens on another, http://127.0.0.1:G
// (Chromium takes localhost and 127.0.0.1 for different origins). The page
// opens a websocket and an EventSource to Gozer, calls a proxied API route
// with a preflight (a custom header, credentials) and a route whose origin is
// down; the test pushes through the admin API and reads from the DOM what
// arrived, waits for both connections to come back after their go-aways
// (push.max_lifetime 4 s), and pushes again. Then a page of an origin the
// policy does not list (another port) fails all of it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pushPage is the page under test: it shows what arrived as JSON in #state.
const pushPage = `<!doctype html>
<meta charset="utf-8">
<title>push page</title>
<pre id="state">{}</pre>
<script>
const q = new URLSearchParams(location.search);
const gw = q.get("gw");
const s = {wsOpen: 0, ws: [], wsClose: [], sseOpen: 0, sse: [], sseGoaway: 0, sseError: 0, sseState: -1, api: "", apiErr: "", down: 0};
const show = () => { document.getElementById("state").textContent = JSON.stringify(s); };
function ws() {
  const w = new WebSocket("ws://" + gw + "/push/ws?token=" + encodeURIComponent(q.get("wst")));
  w.onopen = () => { s.wsOpen++; show(); };
  w.onmessage = (e) => { s.ws.push(e.data); show(); };
  w.onclose = (e) => { s.wsClose.push(e.code); show(); if (e.code === 1001) ws(); };  // a go-away: reconnect
}
ws();
const es = new EventSource("http://" + gw + "/push/sse?token=" + encodeURIComponent(q.get("sst")));
es.onopen = () => { s.sseOpen++; show(); };
es.onmessage = (e) => { s.sse.push(e.data); show(); };
es.addEventListener("goaway", () => { s.sseGoaway++; show(); });
es.onerror = () => { s.sseError++; s.sseState = es.readyState; show(); };
fetch("http://" + gw + "/api/items", {method: "PUT", credentials: "include", headers: {"X-Demo": "1"}, body: "x"})
  .then(async (r) => { s.api = r.status + " " + (await r.text()).trim() + (r.headers.get("X-Request-Id") ? " +id" : ""); show(); })
  .catch((e) => { s.apiErr = String(e); show(); });
fetch("http://" + gw + "/down/x", {credentials: "include"})
  .then((r) => { s.down = r.status; show(); }).catch(() => { s.down = -1; show(); });
show();
</script>
`

// pageState is the page's #state.
type pageState struct {
	WSOpen    int      `json:"wsOpen"`
	WS        []string `json:"ws"`
	WSClose   []int    `json:"wsClose"`
	SSEOpen   int      `json:"sseOpen"`
	SSE       []string `json:"sse"`
	SSEGoaway int      `json:"sseGoaway"`
	SSEError  int      `json:"sseError"`
	SSEState  int      `json:"sseState"`
	API       string   `json:"api"`
	APIErr    string   `json:"apiErr"`
	Down      int      `json:"down"`
}

// state is the JS expression of the page's state, parsed.
const state = `JSON.parse(document.getElementById("state").textContent)`

func readPage(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("state").textContent`))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	var s pageState
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("the page's state %q: %v", raw, err)
	}
	return s
}

// servePage serves pushPage on a loopback port and returns the port.
func servePage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, pushPage)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func TestPushBrowser(t *testing.T) {
	ctx := startBrowser(t)
	pagePort, otherPort := servePage(t), servePage(t)
	page := "http://localhost:" + pagePort
	g, _, _ := corsGozer(t, `{allow_origins: ["`+page+`"], allow_methods: [GET, PUT], allow_headers: [X-Demo],
    expose_headers: [X-Request-Id], allow_credentials: true, max_age: 10m}`)
	open := func(origin, wsID, sseID string) {
		t.Helper()
		u := origin + "/?" + url.Values{"gw": {g.ProxyAddr}, "wst": {g.pushToken(t, wsID, "1h")}, "sst": {g.pushToken(t, sseID, "1h")}}.Encode()
		if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
			t.Fatalf("navigate to %s: %v", origin, err)
		}
	}

	open(page, "page-ws", "page-sse")
	pollDOM(t, ctx, 10*time.Second, "websocket and EventSource open; the API call (preflighted) and the 502 readable",
		state+`.wsOpen >= 1 && `+state+`.sseOpen >= 1 && `+state+`.api === "200 hello from api +id" && `+state+`.down === 502`)
	// Push until each side has its message: a connection may be between a
	// go-away and its reconnection when a push comes.
	deliver := func(msg string) {
		t.Helper()
		ok := eventually(15*time.Second, func() bool {
			s := readPage(t, ctx)
			inWS, inSSE := slices.Contains(s.WS, msg), slices.Contains(s.SSE, msg)
			if !inWS {
				pushAPI(t, g.AdminAddr, "POST", "/push/page-ws", []byte(msg), nil)
			}
			if !inSSE {
				pushAPI(t, g.AdminAddr, "POST", "/push/page-sse", []byte(msg), nil)
			}
			if inWS && inSSE {
				return true
			}
			_ = chromedp.Do(ctx, chromedp.Poll[chromedp.Void](
				fmt.Sprintf(`%s.ws.includes(%q) && %s.sse.includes(%q)`, state, msg, state, msg),
				chromedp.WithPollingTimeout(time.Second), chromedp.WithPollingInterval(20*time.Millisecond)))
			return false
		})
		if !ok {
			t.Fatalf("%q did not arrive on both: %+v", msg, readPage(t, ctx))
		}
	}
	deliver("first")
	pollDOM(t, ctx, 15*time.Second, "both reconnected after their go-aways (websocket close 1001, SSE goaway event)",
		state+`.wsOpen >= 2 && `+state+`.wsClose.includes(1001) && `+state+`.sseOpen >= 2 && `+state+`.sseGoaway >= 1`)
	deliver("after go-away")
	s := readPage(t, ctx)
	t.Logf("allowed page: %+v", s)
	if s.APIErr != "" {
		t.Errorf("the API call failed: %s", s.APIErr)
	}

	// A page of an origin the policy does not list: the websocket and the
	// EventSource are refused (403), the preflighted call and the 502 are
	// withheld from it.
	before := g.corsEdge(t)
	open("http://localhost:"+otherPort, "evil-ws", "evil-sse")
	pollDOM(t, ctx, 10*time.Second, "the other origin's websocket closed unopened, its EventSource closed, its calls failed",
		state+`.wsOpen === 0 && `+state+`.wsClose.length >= 1 && `+state+`.sseOpen === 0 && `+state+`.sseState === 2 && `+
			state+`.apiErr !== "" && `+state+`.api === "" && `+state+`.down === -1`)
	t.Logf("refused page: %+v", readPage(t, ctx))
	after := g.corsEdge(t)
	if after.Refused["push"]-before.Refused["push"] < 2 || after.Refused["preflight"]-before.Refused["preflight"] < 1 {
		t.Errorf("/admin/edge cors_refused_total went from %v to %v; want 2 more push, 1 more preflight", before.Refused, after.Refused)
	}
}
