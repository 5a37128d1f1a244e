package exchange

import (
	"bytes"
	"fmt"

	"gozer/filters"
)

// Request loops: a route, a Host or an origin's address that leads back to
// the gateway makes each request call itself until something gives out (a
// review measured 2,000 hops, 4,100 sockets and 330 MiB for one request,
// answered with a misleading 502 or 429). Every hop adds server.via to the
// request's Via, so a request that names it maxOwnVia times already is a
// loop, answered 508 Loop Detected (RFC 5842) at its fifth pass. Not at its
// second: tiers of Gozer in front of each other keep the default name.
const maxOwnVia = 4

// looped answers a request whose Via names this gateway maxOwnVia times.
// A request without Via costs a header lookup.
func (ex *Exchange) looped() bool {
	via := ex.snap.Config.Server.Via
	if via == "" || ex.req.Header.Peek("Via") == nil {
		return false
	}
	n, own := 0, []byte(via)
	for _, v := range ex.req.Header.PeekAll("Via") {
		n += countVia(v, own)
	}
	if n < maxOwnVia {
		return false
	}
	ex.fail(filters.LocalLoopDetected, fmt.Sprintf("the request's Via names this gateway (server.via %q) %d times: a route or Host leads back to it", via, n))
	return true
}

// countVia counts the entries of a Via field value that are via, alone or
// with a comment ("1.1 gozer (edge)"): not "1.1 gozer-edge".
func countVia(v, via []byte) int {
	n := 0
	for len(v) > 0 {
		e := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			e, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		e = bytes.TrimSpace(e)
		if rest, ok := bytes.CutPrefix(e, via); ok && (len(rest) == 0 || rest[0] == ' ') {
			n++
		}
	}
	return n
}
