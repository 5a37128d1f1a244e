package exchange

import (
	"bytes"

	"gozer/filters"
	"gozer/gateway/tracectx"
)

// traceState is the request's place in its trace (W3C Trace Context): the
// trace it belongs to, and the gateway's own span of it, whose id the origin
// gets as its parent-id. One span per request, not per attempt: the
// forwarded head is built once and sent as it is on every attempt (a retry
// costs nothing more), and the attempts are told apart in the access log's
// attempt_log and the passport; an origin that sees two requests with the
// same parent-id sees two tries of one call, which they are.
type traceState struct {
	cur tracectx.Parent          // trace id, flags; SpanID: the gateway's span
	tp  [tracectx.HeaderLen]byte // cur as the traceparent sent to the origin
	// keepState: the client's tracestate goes on with the request (its
	// traceparent was valid and accepted; a side call's, always).
	keepState bool
}

// beginTrace places the request in a trace: the client's, when it sent a
// valid traceparent and tracing.accept_traceparent allows, else a new one
// (sampled for tracing.sample_ratio of them). More than one traceparent
// header is not a valid one. Either way the gateway's span is new.
func (ex *Exchange) beginTrace() {
	t, lim, ids := &ex.trace, &ex.snap.Limits, ex.lp.ids
	ok := false
	if lim.TraceAccept && ex.req.TraceparentOK { // parsed with the head
		t.cur, ok = ex.req.Traceparent, true
	}
	if !ok {
		t.cur.TraceID, t.cur.Flags = ids.TraceID(), 0
		if ids.Sample(lim.TraceSample) {
			t.cur.Flags = tracectx.FlagSampled
		}
	}
	t.keepState = ok
	ex.newSpan()
}

// newSpan gives the request a span id of its own in its trace.
func (ex *Exchange) newSpan() {
	t := &ex.trace
	t.cur.SpanID = ex.lp.ids.SpanID()
	tracectx.Format(&t.tp, t.cur.TraceID, t.cur.SpanID, t.cur.Flags)
}

// TraceID is the request's trace id: 32 lowercase hex digits. Valid until
// the exchange is recycled.
func (ex *Exchange) TraceID() []byte { return ex.trace.tp[3 : 3+tracectx.TraceIDHexLen] }

// callTrace is what a side call inherits of its request's trace: the trace
// (a span of its own follows) and the tracestate the request received (its
// headers joined with ',', as HTTP combines them).
func (ex *Exchange) callTrace(sc *sideCall) {
	sc.trace = ex.trace.cur
	sc.tracestate = sc.tracestate[:0]
	if !ex.trace.keepState {
		return
	}
	for i, v := range ex.req.Header.PeekAll("Tracestate") {
		if i > 0 {
			sc.tracestate = append(sc.tracestate, ',')
		}
		sc.tracestate = append(sc.tracestate, v...)
	}
}

// hasHeader reports whether a side call's filter set header name itself.
func hasHeader(hs []filters.Header, name string) bool {
	for _, h := range hs {
		if len(h.Name) == len(name) && bytes.EqualFold([]byte(h.Name), []byte(name)) {
			return true
		}
	}
	return false
}
