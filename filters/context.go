package filters

import (
	"bytes"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/httpcodec"
)

// Phase is where in the chain a filter runs.
type Phase uint8

// The phases, in the order a request meets them.
const (
	Inbound Phase = iota
	Endpoint
	Outbound
)

func (p Phase) String() string {
	switch p {
	case Inbound:
		return "inbound"
	case Endpoint:
		return "endpoint"
	case Outbound:
		return "outbound"
	}
	return "unknown"
}

// RouteDecision is what inbound filters decide for a request.
type RouteDecision struct {
	Origin   string // origin to proxy to ("" = not decided yet)
	Path     []byte // request-target sent to the origin (nil = the client's)
	Host     []byte // Host sent to the origin (nil = the client's)
	Endpoint string // a named endpoint instead of the proxy ("" = proxy; "health" is built in)
	// WebSocket is a filter's say on proxying a websocket upgrade request
	// (ctx.route{websocket = true|false}); when it says nothing
	// (WebSocketByOrigin) and no filter chose the origin, the route table's
	// route does (routes[].websocket), else the origin's websocket.enabled.
	WebSocket WebSocketChoice
}

// PushKind says whether a request asks for a push connection, and which.
type PushKind uint8

// The kinds of push request: the core sets Context.Push from the request path.
const (
	PushNone      PushKind = iota
	PushWebSocket          // push.ws_path
	PushSSE                // push.sse_path
)

// Header is one name/value pair of a filter's own response.
type Header struct{ Name, Value string }

// Context is the request context that every filter of one request shares, as Zuul's
// SessionContext: the request, the response once there is one, the route, the
// per-request variables. It belongs to the request's event loop: filters run on that
// goroutine, and nothing may keep a Context, or a slice taken from it, after the
// request has ended (the core recycles it).
type Context struct {
	// Req is the client's request as the origin will get it. Req.Header.Set
	// replaces only the first field of a name (fasthttp's): to vouch for a
	// value (an identity, a scope), Del the name first, or a client's second
	// copy goes on beside it (ctx.req.set_header does both). To remove a
	// name, Req.DeleteHeader also keeps it out of the request's trailers.
	Req        *httpcodec.Request
	Resp       *httpcodec.Response // set for the outbound phase: the origin's answer or the gateway's own
	Phase      Phase
	RemoteAddr string   // client ip:port
	Scheme     string   // "http" or "https": how the client reached Gozer
	Proto      string   // the protocol the client spoke: "HTTP/1.1", "HTTP/1.0", "HTTP/2.0" ("" for a side call)
	TLS        *TLSInfo // the client's TLS connection; nil over plain HTTP
	ID         []byte   // request id (X-Request-Id)
	TraceID    []byte   // trace id (W3C Trace Context): 32 lowercase hex digits
	Start      int64    // unix nanoseconds when the head was complete
	Log        *zerolog.Logger
	// Clock is the event loop's clock (unix ns as of the current event: no
	// system call); nil: the system clock. Now reads it.
	Clock func() int64

	Route RouteDecision

	// Push is set by the core for a request at a push path; PushID is set by the
	// inbound filter that accepts the push connection (ctx.push_accept).
	Push   PushKind
	PushID string
	// PushTopics are the topics the accepting filter subscribed the
	// connection to (ctx.push_accept(id, {topics = ...})), names checked.
	PushTopics []string

	// CORS is the request's cross-origin state (cors.go): the policy the core
	// chose, a Lua filter's verdict, what was decided.
	CORS CORS

	// Set by Respond: the request is answered by the filter, remaining inbound filters
	// and the proxy are skipped, outbound filters still run.
	Responded      bool
	RespondStatus  int
	RespondBody    []byte
	RespondHeaders []Header

	// Failed is set when a filter failed fatally (or ran past its budget): the request
	// gets a 500 with FailCause.
	Failed     bool
	FailCause  Cause
	FailReason string

	// Known in the outbound phase.
	Cause    Cause
	Attempts int
	// StatusHeaders: the response will carry X-Gozer-Status and
	// X-Gozer-Attempts (server.status_headers decided, from the request); an
	// outbound filter that deletes or sets either header turns it off.
	StatusHeaders bool
	// NoCompress: a filter asked that this response is not compressed.
	NoCompress bool
	// Inject is the failure a filter asked for (ctx.inject; inject.go):
	// it replaces the fault_injection rules' choice for this request.
	Inject Injection

	// Body is the whole request body when a filter asked for it buffered (BodyOK).
	Body   []byte
	BodyOK bool
	// RespBody is the whole response body when an outbound filter asked for it
	// buffered (RespBodyOK); a filter may replace it, and then sets
	// RespBodySet: the origin's trailers (a checksum, a digest) no longer
	// describe it, and the core drops them.
	RespBody    []byte
	RespBodyOK  bool
	RespBodySet bool

	// Vars is the filter runtime's per-request state (the Lua ctx.vars table);
	// the core only clears it. A Vars that is a Recycler is handed back by
	// Reset, once the request is over.
	Vars any

	// Async filters (async.go). Calls makes the request's side calls and
	// Resume is what a chain calls, on the loop, once a phase it suspended has
	// finished; the core sets both. The chain sets Suspended while a filter
	// of the current phase waits on I/O, and keeps its own state for it in
	// Pending (the core leaves it alone, and calls Chain.Abandon when the
	// request ends while suspended).
	Calls     Caller
	Resume    func()
	Suspended bool
	Pending   any

	// Passport is the request's timeline (passport.go) while
	// tracing.passport_threshold is on; nil otherwise. The core owns it;
	// the chain marks its filters' steps in it.
	Passport *Passport
}

// Recycler is a Vars value that its runtime takes back when the request is
// over: Reset calls Recycle, on the goroutine that owns c (the request's
// event loop), after which the request's filters never run again.
type Recycler interface{ Recycle() }

// Reset clears c for the next request, keeping its buffers.
func (c *Context) Reset() {
	if r, ok := c.Vars.(Recycler); ok {
		r.Recycle()
	}
	*c = Context{
		RespondBody:    c.RespondBody[:0],
		RespondHeaders: c.RespondHeaders[:0],
		Body:           c.Body[:0],
		RespBody:       c.RespBody[:0],
	}
}

// Now is the time as of the current event (Clock), unix nanoseconds.
func (c *Context) Now() int64 {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now().UnixNano()
}

// Respond short-circuits the request with the filter's own answer.
func (c *Context) Respond(status int, body []byte, headers []Header) {
	c.Responded = true
	c.RespondStatus = status
	c.RespondBody = append(c.RespondBody[:0], body...)
	c.RespondHeaders = append(c.RespondHeaders[:0], headers...)
}

// Fail marks the request as failed by a filter: it is answered with cause's status.
func (c *Context) Fail(cause Cause, reason string) {
	c.Failed, c.FailCause, c.FailReason = true, cause, reason
}

// Method is the request method.
func (c *Context) Method() []byte { return c.Req.Header.Method() }

// Path is the request path (without the query), as rewritten by a filter if it was.
func (c *Context) Path() []byte {
	if c.Route.Path != nil {
		p, _, _ := bytes.Cut(c.Route.Path, []byte{'?'})
		return p
	}
	return PathOf(c.Req.Header.RequestURI())
}

// Query is the raw query string (after '?', without it).
func (c *Context) Query() []byte {
	uri := c.Req.Header.RequestURI()
	if c.Route.Path != nil {
		uri = c.Route.Path
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[i+1:]
	}
	return nil
}

// Arg returns the first value of query parameter name, unescaped.
func (c *Context) Arg(name string) (string, bool) {
	q := c.Query()
	for len(q) > 0 {
		var pair []byte
		pair, q, _ = bytes.Cut(q, []byte{'&'})
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if ks, err := url.QueryUnescape(string(k)); err == nil && ks == name {
			vs, err := url.QueryUnescape(string(v))
			if err != nil {
				return string(v), true
			}
			return vs, true
		}
	}
	return "", false
}

// Host is the request's host (without port), as rewritten by a filter if it was.
func (c *Context) Host() []byte {
	if c.Route.Host != nil {
		return HostWithoutPort(c.Route.Host)
	}
	return HostWithoutPort(c.Req.Header.Host())
}

// SetPath rewrites the request-target sent to the origin (path and optional query).
func (c *Context) SetPath(p []byte) { c.Route.Path = append(c.Route.Path[:0], p...) }

// PathOf returns the path of a request-target: origin-form up to '?', or the path
// part of an absolute-form target, whose authority ends at the first '/' or
// '?' (as the origin-form sent on is made: "http://h?/api" is "/" with the
// query "/api", never the path "/api").
func PathOf(uri []byte) []byte {
	if len(uri) > 0 && uri[0] != '/' {
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			j := bytes.IndexAny(rest, "/?")
			if j < 0 || rest[j] == '?' {
				return []byte("/")
			}
			uri = rest[j:]
		}
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// TLSInfo is what a client's TLS connection negotiated: the same for every
// request on it, built once when its handshake finished. Read-only.
type TLSInfo struct {
	Version string // "1.2", "1.3"
	Cipher  string // e.g. TLS_AES_128_GCM_SHA256
	SNI     string // the server name the client asked for ("" without SNI)
	ALPN    string // the protocol agreed ("" without ALPN)
	Resumed bool   // a resumed session (no full handshake)
	// ClientSubject is the verified client certificate's subject (mutual
	// TLS, listeners.https.client_auth); "" when none was sent.
	ClientSubject string
}
