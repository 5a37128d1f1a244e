package httpcodec

import "bytes"

// What the gateway takes out of a client's request head before filters see
// it, and what a filter takes out for good: the fields the client's
// Connection names, the fields named with an "_", and the names a filter
// deleted (out of the trailer section too).

// DeleteHeader deletes every field called name, and keeps the name out of
// the request's trailer section as well (AppendTrailerFields), whether the
// head had it or not: a filter that removes a client's X-User means the
// client's, wherever it comes. Header.Del alone leaves a trailer free to
// carry it back.
func (r *Request) DeleteHeader(name string) {
	r.Header.Del(name)
	if len(r.deleted)+len(name) < 4<<10 { // past that, the head's own bound rules
		r.deleted = append(append(r.deleted, name...), '\n')
	}
}

// deletedName reports whether DeleteHeader took name.
func (r *Request) deletedName(name []byte) bool {
	for d := r.deleted; len(d) > 0; {
		i := bytes.IndexByte(d, '\n')
		if eqFoldBytes(d[:i], name) {
			return true
		}
		d = d[i+1:]
	}
	return false
}

// dropNominated deletes from Header the fields the client's Connection
// header names (RFC 9110 7.6.1: meant for this hop only), as soon as the head
// is parsed, so a field a filter sets later under such a name is the
// filter's and goes to the origin. (Dropped while forwarding instead,
// "Connection: X-User" stripped the identity an auth filter had just set.)
// Filters do not see them: a field the client addressed to the gateway alone
// is no request's ("Connection: Authorization" leaves the auth filter
// nothing to judge, which fails safe). Only end-to-end fields go, and
// traceparent and tracestate; the names forwarding handles itself (Host,
// X-Request-Id, X-Forwarded-*, Forwarded, X-Real-IP, Via, Content-Length,
// Trailer, Upgrade, ...) stay as they were. It reports whether it deleted a
// traceparent. vals are the Connection lines' values (headSeen.connVals: the
// raw head's bytes, which DelBytes does not touch).
func (r *Request) dropNominated(vals [][]byte) (traceparent bool) {
	for _, v := range vals {
		for len(v) > 0 {
			var t []byte
			t, v = nextToken(v)
			switch kindOf(t) {
			case kOther, kTracestate:
				r.Header.DelBytes(t)
			case kTraceparent:
				r.Header.DelBytes(t)
				traceparent = true
			}
		}
	}
	return traceparent
}

// DropUnderscoreHeaders deletes the headers whose names have an "_" (see
// Underscores). The names come from r's scratch serialization, which
// DelBytes does not touch: no allocation.
func (r *Request) DropUnderscoreHeaders() {
	b := r.indexHeaders()
	for i := range r.idx {
		if name := r.idx[i].name(b); bytes.IndexByte(name, '_') >= 0 {
			r.Header.DelBytes(name)
		}
	}
}
