package exchange

// maxInterim is how many interim answers one request passes to its client,
// over all its attempts. Browsers use one or two 103 Early Hints; an origin
// that sends more is broken or hostile, and what it sends past the cap is
// dropped (counted in Shared.InterimDropped): each one is at most a response
// head (maxRespHeader), so the cap bounds what a client is sent before its
// final answer.
const maxInterim = 8

// interim handles the origin's interim answer in ex.resp (a 1xx but 101),
// before responseHead drops it: RFC 9110 15.2 has a proxy forward 1xx
// answers it did not ask for. 100 Continue stays dropped (the gateway
// answers a client's Expect: 100-continue itself), and so does everything
// on a websocket upgrade (the 101 is what it waits for) or with
// server.forward_early_hints off. The answer goes through no outbound
// filter, keeps the access log's status, and does not count as the
// response having started: the retry rule and a final error answer are as
// without it. It reports false when the client went away during the write.
// On the exchange's loop.
func (ex *Exchange) interim() bool {
	r, ds := &ex.resp, ex.ds
	if r.Status == 100 || ex.out.ws || !ex.snap.Config.Server.ForwardEarlyHints {
		return true
	}
	sh := ex.lp.l.Shared
	if ex.out.interim >= maxInterim || ds.Buffered() >= sh.SendAllowance(ex.snap.Limits.MaxBuffered) {
		// Past the cap, or toward a client that holds its allowance unread
		// already: hints are optional, and it would not read them anyway.
		sh.InterimDropped.Add(1)
		if e := sh.Sampled.Info("interim_dropped"); e != nil {
			e.Bytes("request_id", ex.id).Int("status", r.Status).Int("forwarded", int(ex.out.interim)).
				Msg("origin's interim answer not passed on (over the cap per request, or the client is not reading)")
		}
		return true
	}
	// A 1xx has no content (RFC 9110 8.6): no Content-Length goes with it,
	// even to a HEAD request, whose final head would keep it.
	r.HasContentLength = false
	h := &ex.out.head
	*h = Head{RequestID: ex.id, Via: ex.snap.Config.Server.Via, scratch: h.scratch[:0]}
	if ds.WriteInterim(r, h) {
		ex.out.interim++
		sh.InterimForwarded.Add(1)
	}
	return ex.ds != nil
}
