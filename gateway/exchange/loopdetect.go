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
	n := 0
	for _, v := range ex.req.Header.PeekAll("Via") {
		n += bytes.Count(v, []byte(via))
	}
	if n < maxOwnVia {
		return false
	}
	ex.fail(filters.LocalLoopDetected, fmt.Sprintf("the request's Via names this gateway (server.via %q) %d times: a route or Host leads back to it", via, n))
	return true
}
