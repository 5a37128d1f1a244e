package push

// The push API's answers: JSON bodies, refusals and their (sampled) log
// lines. Any goroutine.

import (
	"encoding/json"
	"fmt"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

func (a *API) notAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	a.failAnswer(ctx, fasthttp.StatusMethodNotAllowed, errorAnswer{Error: fmt.Sprintf("method %s not allowed, use %s", ctx.Method(), allow)})
}

// failAnswer is fail with the answer v marshalled; its error is the reason.
func (a *API) failAnswer(ctx *fasthttp.RequestCtx, status int, v any) {
	reason := ""
	switch v := v.(type) {
	case errorAnswer:
		reason = v.Error
	case pushAnswer:
		reason = v.Error
	case broadcastAnswer:
		reason = v.Error
	case statusAnswer:
		reason = v.Error
	case topicAnswer:
		reason = v.Error
	}
	b, status := marshal(v, status)
	a.fail(ctx, status, reason, b)
}

// fail answers a non-2xx status with the JSON body and logs it: 404 and 429
// at debug (they are routine and can come in floods), other 4xx at info, 5xx
// at warn, at most one 5xx line per 5 s with a count of the ones suppressed
// (a registry outage would otherwise log every request).
func (a *API) fail(ctx *fasthttp.RequestCtx, status int, reason string, body []byte) {
	var ev *zerolog.Event
	switch {
	case status >= 500:
		if ok, suppressed := a.errLog.allow(a.now()); ok {
			ev = a.log.Warn().Int64("suppressed", suppressed)
		}
	case status == fasthttp.StatusNotFound || status == fasthttp.StatusTooManyRequests:
		ev = a.log.Debug()
	default:
		ev = a.log.Info()
	}
	if ev != nil { // nil also when the level is off: then nothing is formatted
		ev.Int("status", status).Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).
			Str("remote", ctx.RemoteAddr().String()).Bool("forwarded", len(ctx.Request.Header.Peek(ForwardedHeader)) > 0).
			Str("reason", reason).Msg("push api: request refused")
	}
	writeBody(ctx, status, body)
}

// marshal returns v as JSON with a newline, or a 500's body if that fails.
func marshal(v any, status int) ([]byte, int) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen with the answer types above
		return []byte(`{"error":"encoding the answer failed"}` + "\n"), fasthttp.StatusInternalServerError
	}
	return append(b, '\n'), status
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, status := marshal(v, status)
	writeBody(ctx, status, b)
}

// writeBody sets the status, the JSON headers and the body (copied: b may
// be reused once it returns).
func writeBody(ctx *fasthttp.RequestCtx, status int, b []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.SetBody(b)
}

// b2s returns b as a string without copying it. The string is only valid
// while b is and must not be kept: only for calls that merely look at it.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (a *API) now() int64 { return int64(time.Since(a.start)) }
