package exchange

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/origin"
	"gozer/gateway/tracectx"
)

// Side calls: what an async filter asks of another service. A side call is a
// request of its own, made by an exchange of its own on the request's loop, so
// it takes the named origin's whole way (admission, breaker, bulkhead, P2C,
// retries, outlier ejection, pooled connections of this loop, status causes,
// an access-log line with its attempts); its downstream is a sideCall, which
// keeps the answer in memory, bounded, for the filter.

// DefaultCallTimeout bounds a side call when neither the call, its origin
// (call_timeout) nor filters.call_timeout say.
const DefaultCallTimeout = time.Second

// Call implements filters.Caller for the request's filters: the side call
// starts now, done runs at the end of a later (or this) callback.
func (ex *Exchange) Call(c *filters.SideCall, done func(*filters.SideResult)) filters.Pending {
	lp := ex.lp
	sc := lp.newSideCall()
	sc.done = done
	sc.client = *ex.ds.Client()
	sc.client.Peer = nil // the client's own count holds its request, not the gateway's calls
	// The call is Gozer's, spoken by no client: no protocol in its access-log
	// line, and its origin is not told TE: trailers (trailersReachClient),
	// as its answer goes to the filter, without trailers.
	sc.client.Proto = ""
	sc.parentID = append(sc.parentID[:0], ex.id...)
	ex.callTrace(sc)
	sc.start(c)
	return sc
}

// sideCall is one side call: the Downstream of its exchange and the handle
// its filter holds (filters.Pending).
//
// Concurrency: loop goroutine only, but for the timeout timer's function,
// which only hands the loop a task with the generation it was armed for
// (gen is atomic: a call that ended, or was reused, ignores it).
type sideCall struct {
	lp       *Loop
	ex       *Exchange // the call's exchange; nil once it ended
	client   Client
	parentID []byte
	// trace is the request's trace (the call gets a span of its own in it),
	// tracestate the tracestate the request received (sent with the call
	// unless its filter gives one).
	trace      tracectx.Parent
	tracestate []byte
	done       func(*filters.SideResult)
	res        filters.SideResult
	max        int
	head       []byte // the request head, built for Parse
	hdrBuf     []byte // the answer's header names and values, gathered
	in, out    int64
	timer      *time.Timer
	gen        atomic.Uint64
	over       bool // the answer outgrew max: Flush ends the call
	ended      bool // the answer (or failure) is known; Run delivers it
	dropped    bool // cancelled: nothing is delivered
	queued     bool // Run is queued with Later
}

// newSideCall takes a recycled sideCall or makes one.
func (lp *Loop) newSideCall() *sideCall {
	if n := len(lp.calls); n > 0 {
		sc := lp.calls[n-1]
		lp.calls = lp.calls[:n-1]
		return sc
	}
	sc := &sideCall{lp: lp}
	sc.timer = time.AfterFunc(time.Hour, sc.fire)
	sc.timer.Stop()
	return sc
}

// recycle keeps sc for the next call once it is finished with.
func (sc *sideCall) recycle() {
	sc.ex, sc.done = nil, nil
	sc.res = filters.SideResult{Headers: sc.res.Headers[:0], Body: trimBuf(sc.res.Body[:0])}
	sc.ended, sc.dropped, sc.queued, sc.over = false, false, false, false
	sc.in, sc.out = 0, 0
	if len(sc.lp.calls) < recycleCalls {
		sc.lp.calls = append(sc.lp.calls, sc)
	}
}

// recycleCalls bounds the side calls a loop keeps for reuse.
const recycleCalls = 256

// start builds the call's request and starts its exchange.
func (sc *sideCall) start(c *filters.SideCall) {
	lp := sc.lp
	snap := lp.l.Snapshot()
	o, ok := snap.Origins.Get(c.Origin)
	if !ok {
		sc.fail(filters.LocalNoRoute, "unknown origin "+strconv.Quote(c.Origin))
		return
	}
	sc.max = snap.Limits.MaxFilterBody
	if c.MaxBody > 0 && c.MaxBody < sc.max {
		sc.max = c.MaxBody
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = o.CallTimeout
	}
	if timeout <= 0 {
		timeout = snap.Config.Filters.CallTimeout
	}
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	host := c.Host
	if host == "" {
		host = string(o.DefaultHost)
	}
	ex := lp.Begin(sc)
	sc.ex = ex
	sc.head = appendCallHead(sc.head[:0], c, host, sc.tracestate)
	if err := ex.req.Parse(sc.head); err != nil {
		ex.ds = nil
		lp.retire(ex)
		sc.ex = nil
		sc.fail(filters.ClientBadRequest, "bad side call: "+err.Error())
		return
	}
	sc.in = int64(len(sc.head) + len(c.Body))
	sc.gen.Add(1)
	sc.timer.Reset(timeout)
	ex.startCall(o, c.Body, sc.parentID, &sc.trace)
}

// appendCallHead writes the call's request head as a client would send it,
// with tracestate (the request's) unless empty or the filter gives its own.
// The traceparent is the exchange's (startCall): one a filter gives is
// replaced.
func appendCallHead(b []byte, c *filters.SideCall, host string, tracestate []byte) []byte {
	method, path := c.Method, c.Path
	if method == "" {
		method = "GET"
	}
	if path == "" {
		path = "/"
	}
	b = append(append(append(b, method...), ' '), path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(append(b, host...), "\r\n"...)
	if len(tracestate) > 0 && !hasHeader(c.Headers, "tracestate") {
		b = append(append(append(b, "Tracestate: "...), tracestate...), "\r\n"...)
	}
	for _, h := range c.Headers {
		b = append(append(append(append(b, h.Name...), ": "...), h.Value...), "\r\n"...)
	}
	if len(c.Body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(c.Body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// fire is the timer's function (its own goroutine): the loop ends the call if
// it is still the one the timer was armed for.
func (sc *sideCall) fire() {
	gen := sc.gen.Load()
	sc.lp.l.Execute(func() { sc.expire(gen) })
}

// expire ends a call that ran past its timeout.
func (sc *sideCall) expire(gen uint64) {
	if sc.gen.Load() != gen || sc.ended || sc.ex == nil {
		return
	}
	sc.stopExchange(filters.LocalCallTimeout, "side call ran past its timeout")
	sc.fail(filters.LocalCallTimeout, "timeout")
}

// stopExchange ends the call's exchange from outside (a timeout, a cancel, an
// answer over its cap): its connection is closed, its access-log line says
// cause.
func (sc *sideCall) stopExchange(cause filters.Cause, reason string) {
	ex := sc.ex
	if ex == nil {
		return
	}
	sc.ex = nil
	ex.stop(cause, reason)
}

// stop ends a side call's exchange from outside: its access-log line says
// cause, its connection is closed (the answer is not known to be complete).
// A timeout counts against the server (the outlier detector, the breaker);
// a call given up for its request's sake does not.
func (ex *Exchange) stop(cause filters.Cause, reason string) {
	ex.log.cause, ex.log.reason, ex.log.status = cause, reason, cause.Status
	ex.endAttempt(cause != filters.LocalCallTimeout)
	ex.logAccess()
	ex.dropConn()
	ex.ds = nil
	ex.lp.retire(ex)
}

// fail ends the call without an answer.
func (sc *sideCall) fail(cause filters.Cause, reason string) {
	sc.res.Status, sc.res.Body = 0, sc.res.Body[:0]
	sc.res.Headers = sc.res.Headers[:0]
	sc.res.Cause = cause
	if cause == filters.LocalCallTimeout {
		sc.res.Err = "timeout"
	} else {
		sc.res.Err = cause.Name + ": " + reason
	}
	sc.end()
}

// end marks the outcome known and queues its delivery.
func (sc *sideCall) end() {
	if sc.ended {
		return
	}
	sc.ended = true
	sc.gen.Add(1)
	sc.timer.Stop()
	sc.ex = nil
	sc.queued = true
	sc.lp.l.Later(sc)
}

// Run delivers the outcome (loop.Task): after the callback that produced it
// has unwound, so the filter may start more calls or resume its request.
func (sc *sideCall) Run() {
	sc.queued = false
	if !sc.dropped && sc.done != nil {
		done := sc.done
		sc.done = nil
		done(&sc.res)
	}
	sc.recycle()
}

// Cancel implements filters.Pending: the request that made the call ended.
func (sc *sideCall) Cancel() {
	if sc.dropped {
		return
	}
	sc.dropped = true
	if sc.ended {
		return // Run is queued: it recycles without delivering
	}
	sc.ended = true
	sc.gen.Add(1)
	sc.timer.Stop()
	sc.stopExchange(filters.LocalCallAbandoned, "the request that made the side call ended")
	sc.recycle()
}

// The sideCall is its exchange's Downstream.

func (sc *sideCall) Client() *Client { return &sc.client }
func (sc *sideCall) Draining() bool  { return false }
func (sc *sideCall) Continue()       {}

// ReadBody: the call's body is given whole at the start (startCall).
func (sc *sideCall) ReadBody(func([]byte) bool) (bool, error) { return true, nil }
func (sc *sideCall) Trailer() []byte                          { return nil }
func (sc *sideCall) BodyExpected(bool)                        {}
func (sc *sideCall) PauseBody()                               {}
func (sc *sideCall) ResumeBody()                              {}

// WriteInterim: a filter's call waits for the final answer; hints are for
// browsers, so an interim answer goes nowhere.
func (sc *sideCall) WriteInterim(*httpcodec.Response, *Head) bool { return false }

// WriteHead keeps the answer's status and headers (hop-by-hop ones left out).
// A later head replaces an earlier one: nothing reached the filter yet.
func (sc *sideCall) WriteHead(r *httpcodec.Response, _ *Head) {
	res := &sc.res
	res.Status = r.Status
	sc.over = false
	res.Headers = res.Headers[:0]
	res.Body = res.Body[:0]
	// One string holds every name and value (the head is not kept past this
	// callback): one allocation for the headers, whatever their number.
	buf := sc.hdrBuf[:0]
	r.Headers(func(k, v []byte) {
		if !isHopHeader(k) {
			buf = append(append(buf, k...), v...)
		}
	})
	sc.hdrBuf = buf
	all := string(buf)
	off := 0
	r.Headers(func(k, v []byte) {
		if !isHopHeader(k) {
			name := all[off : off+len(k)]
			off += len(k)
			res.Headers = append(res.Headers, filters.Header{Name: name, Value: all[off : off+len(v)]})
			off += len(v)
		}
	})
}

// isHopHeader: the connection's business, not the answer's.
func isHopHeader(k []byte) bool {
	for _, h := range hopHeaders {
		if bytes.EqualFold(k, h) {
			return true
		}
	}
	return false
}

var hopHeaders = [][]byte{[]byte("Connection"), []byte("Keep-Alive"), []byte("Transfer-Encoding"), []byte("Content-Length")}

// WriteBody keeps the body up to the call's cap; over it, Flush ends the call.
func (sc *sideCall) WriteBody(p []byte) {
	if sc.over || len(sc.res.Body)+len(p) > sc.max {
		sc.over = true
		return
	}
	sc.res.Body = append(sc.res.Body, p...)
	sc.out += int64(len(p))
}

// EndBody: a side call's answer has no trailers for the filter (ctx.http
// gives status, headers and body).
func (sc *sideCall) EndBody([]byte) {}

// Flush: over the cap, the call ends here (the exchange sees a client gone).
func (sc *sideCall) Flush() bool {
	if !sc.over {
		return true
	}
	sc.stopExchange(filters.LocalCallTooLarge, fmt.Sprintf("side call answer larger than %d bytes", sc.max))
	sc.fail(filters.LocalCallTooLarge, fmt.Sprintf("answer larger than %d bytes", sc.max))
	return false
}

func (sc *sideCall) Started() bool             { return false }
func (sc *sideCall) Buffered() int             { return 0 }
func (sc *sideCall) WaitWritable()             {}
func (sc *sideCall) Bytes() (in, out int64)    { return sc.in, sc.out }
func (sc *sideCall) Hijack() (gnet.Conn, bool) { return nil, false }

// Done: the exchange finished: the origin's answer, or the gateway's own
// refusal (an open breaker, no server, a connect failure).
func (sc *sideCall) Done(bool) {
	ex := sc.ex
	if ex != nil && ex.out.local && ex.log.cause.Category != filters.CategorySuccess {
		sc.fail(ex.log.cause, ex.log.reason)
		return
	}
	sc.end()
}

// Abort: the exchange could not finish the answer.
func (sc *sideCall) Abort(bool) {
	ex := sc.ex
	cause, reason := filters.LocalInternal, "side call aborted"
	if ex != nil && ex.log.cause.Name != "" {
		cause, reason = ex.log.cause, ex.log.reason
	}
	sc.fail(cause, reason)
}

// startCall starts a side call's exchange: no filters, straight into origin
// o's isolation, the body (given whole) kept for replay so that a retry can
// send it again. parent is the id of the request whose filter made the call,
// trace its trace: the call is a span of its own in it.
func (ex *Exchange) startCall(o *origin.Origin, body, parent []byte, trace *tracectx.Parent) {
	ex.id = ex.lp.l.NextRequestID(ex.id[:0])
	ex.trace.cur, ex.trace.keepState = *trace, true
	ex.newSpan()
	ex.startPassport()
	ex.log.parent = append(ex.log.parent[:0], parent...)
	ex.flt.fc.Req = &ex.req
	ex.body.replay = append(ex.body.replay[:0], body...)
	ex.body.decoded = int64(len(body))
	ex.body.done = true
	ex.proceed(o)
}
