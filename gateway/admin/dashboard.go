package admin

import (
	"bufio"
	"embed"
	"errors"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// The live dashboard (GET /dashboard): one page whose HTML, CSS and script
// are embedded in the binary, fed by GET /dashboard/stream, a Server-Sent
// Events stream of one JSON event per second from the sampler.

//go:embed dashboard
var dashboardFiles embed.FS

const (
	dashboardStreamPath = "/dashboard/stream"
	// sseWriteTimeout bounds the write of one event to a stream: a dashboard
	// that stops reading is dropped, not waited for.
	sseWriteTimeout = 5 * time.Second
	// sseRetryMS is how long a browser waits before reconnecting a broken
	// stream (the SSE retry field).
	sseRetryMS = "2000"
	// dashboardCSP lets the page load its own files only, and nothing run
	// inline.
	dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)

// dashboardAsset serves one embedded file of the dashboard as contentType.
func dashboardAsset(name, contentType string) http.HandlerFunc {
	b, err := dashboardFiles.ReadFile("dashboard/" + name)
	if err != nil {
		panic("admin: dashboard file missing from the binary: " + name) // a build error, not a run-time one
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	}
}

// dashboardRoutes adds the page and its files to mux.
func dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dashboard", dashboardAsset("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /dashboard/dashboard.css", dashboardAsset("dashboard.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /dashboard/dashboard.js", dashboardAsset("dashboard.js", "text/javascript; charset=utf-8"))
}

// dashboardStream serves GET /dashboard/stream: "retry", then the latest
// event at once (when the sampler has one), then one "data: JSON" event per
// second until the client leaves, a write takes longer than
// sseWriteTimeout, or the listener shuts down. It is a fasthttp handler (the
// net/http adaptor buffers a whole answer): the events are written by
// fasthttp's body-stream goroutine, the connection closes after the stream.
func (a *Server) dashboardStream(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		ctx.Response.Header.Set("Allow", "GET")
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	events, last, cancel, err := a.sampler.Subscribe()
	if err != nil {
		if errors.Is(err, errTooManyStreams) {
			ctx.Response.Header.Set("Retry-After", "5")
		}
		ctx.Error(err.Error()+"\n", fasthttp.StatusServiceUnavailable)
		return
	}
	h := &ctx.Response.Header
	h.SetContentType("text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	ctx.SetConnectionClose()
	conn, done := ctx.Conn(), a.sampler.Done()
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		write := func(parts ...[]byte) bool {
			// The server writes to conn what w flushes into the stream's pipe:
			// the deadline bounds that write (the server's WriteTimeout was set
			// once, before the stream began).
			_ = conn.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
			for _, p := range parts {
				_, _ = w.Write(p)
			}
			return w.Flush() == nil
		}
		if !write([]byte("retry: " + sseRetryMS + "\n\n")) {
			return
		}
		if last != nil && !write(sseData, last, sseEnd) {
			return
		}
		for {
			select {
			case <-done:
				return
			case ev := <-events:
				if !write(sseData, ev, sseEnd) {
					return
				}
			}
		}
	})
}

var (
	sseData = []byte("data: ")
	sseEnd  = []byte("\n\n")
)
