package exchange

import (
	"strconv"

	"gozer/filters"
	"gozer/gateway/ratelimit"
)

// denied answers 403 FAILURE_CLIENT_DENIED when the client's network joined
// the deny list after its connection was accepted (connections are refused at
// accept; this catches the ones already open). One atomic load while the
// list is empty.
func (ex *Exchange) denied() bool {
	sh := ex.lp.l.Shared
	if sh.Limits == nil || !sh.Limits.Deny.Denied(ex.ds.Client().Addr) {
		return false
	}
	ex.out.closeAfter = true
	sh.Sampled.Warn(filters.ClientDenied.Name).Str("client", ex.ds.Client().Remote).Msg("request refused: client network denied (protect.deny, /admin/deny)")
	ex.fail(filters.ClientDenied, "client network is on the deny list")
	return true
}

// rateLimited checks the declarative limits (limits.rules) that match the
// request routed to origin; over one it answers 429 FAILURE_CLIENT_RATE_LIMITED
// with Retry-After and reports true. The keys are built on the stack: no
// allocation unless a bucket is new.
func (ex *Exchange) rateLimited(origin string) bool {
	sh := ex.lp.l.Shared
	if sh.Limits == nil || len(ex.snap.Config.Limits.Rules) == 0 {
		return false
	}
	rules := sh.Limits.RulesFor(ex.snap.Config, ex.snap.Config.Limits.Compile)
	path := ex.flt.fc.Path()
	now := ex.lp.l.Now()
	var buf [192]byte
	for i := range rules.List {
		r := &rules.List[i]
		if !r.Matches(origin, path) {
			continue
		}
		k := append(buf[:0], r.Prefix...)
		switch r.Key.Kind {
		case ratelimit.KeyIP:
			k = r.Key.AppendIP(k, ex.ds.Client().Addr)
		case ratelimit.KeyHeader:
			v := ex.req.Header.Peek(r.Key.Header)
			if len(v) == 0 {
				continue // no key: the limit does not apply (another may)
			}
			k = ratelimit.AppendKeyPart(k, v)
		case ratelimit.KeyOrigin:
			k = append(k, origin...)
		}
		ok, wait := sh.Limits.Requests.Take(k, now, r.Rate)
		if ok {
			continue
		}
		r.Counter.Rejected.Add(1)
		if e := sh.Sampled.Warn(r.LogReason); e != nil { // nil: sampled out, nothing formatted
			e.Str("limit", r.Name).Str("client", ex.ds.Client().Remote).
				Str("key", r.Key.String()).Msg("request refused: over a rate limit (limits.rules)")
		}
		ex.rejectRate("over limit "+strconv.Quote(r.Name), wait)
		return true
	}
	return false
}

// rejectRate answers 429 FAILURE_CLIENT_RATE_LIMITED with Retry-After (the
// wait in ns, rounded up to seconds).
func (ex *Exchange) rejectRate(reason string, wait int64) {
	ex.log.cause, ex.log.reason = filters.ClientRateLimited, reason
	if !ex.body.done {
		ex.out.closeAfter = true // the body was not read: the connection cannot be reused
	}
	ra := strconv.FormatInt(ratelimit.RetryAfter(wait), 10)
	ex.answer(filters.ClientRateLimited.Status, filters.ClientRateLimited, nil, []filters.Header{{Name: "Retry-After", Value: ra}})
}
