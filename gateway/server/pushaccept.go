package server

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/push"
)

// pushKindOf tells whether a request is at one of the push paths.
func (l *loop) pushKindOf(req *httpcodec.Request) filters.PushKind {
	p := filters.PathOf(req.Header.RequestURI())
	switch {
	case string(p) == l.srv.cfg.Push.WSPath:
		return filters.PushWebSocket
	case string(p) == l.srv.cfg.Push.SSEPath:
		return filters.PushSSE
	}
	return filters.PushNone
}

// pushEndpoint answers a request at a push path after the inbound filters ran: an
// accepted one becomes a push connection; one no filter accepted gets 403, so push
// is never open without an auth filter.
func (ex *exchange) pushEndpoint() {
	fc, h := &ex.fc, ex.l.srv.push
	if fc.PushID == "" {
		h.stats.refused.Add(1)
		ex.fail(filters.ClientPushNotAccepted, "no inbound filter accepted the push connection (ctx.push_accept)")
		return
	}
	req := &ex.req
	if fc.Push == filters.PushSSE && string(req.Header.Method()) != "GET" {
		ex.refusePush(405, "SSE needs GET", []filters.Header{{Name: "Allow", Value: "GET"}})
		return
	}
	if req.Framing != httpcodec.FramingNone && !(req.Framing == httpcodec.FramingLength && req.ContentLength == 0) {
		ex.refusePush(400, "push request with a body", nil)
		return
	}
	var accept []byte
	switch fc.Push {
	case filters.PushWebSocket:
		key, err := push.CheckHandshake(req.Header.Method(), req.Header.Protocol(), &req.Header)
		if err != nil {
			var he *push.HandshakeError
			errors.As(err, &he)
			var hdrs []filters.Header
			if he.Status == 426 {
				hdrs = []filters.Header{{Name: "Sec-WebSocket-Version", Value: "13"}}
				ex.upgradeTo = "websocket"
			}
			ex.refusePush(he.Status, he.Reason, hdrs)
			return
		}
		accept = push.AppendAccept(ex.l.wbuf[:0], key)
	case filters.PushSSE:
		accept = push.AppendSSEResponse(ex.l.wbuf[:0])
	}
	ex.l.wbuf = accept[:0]
	ex.upgrade(accept)
}

// refusePush answers a push request that cannot become a push connection, and
// closes the connection: a device that got the handshake wrong should not go on
// talking HTTP on it.
func (ex *exchange) refusePush(status int, reason string, hdrs []filters.Header) {
	ex.l.srv.push.stats.refused.Add(1)
	ex.closeAfter = true
	ex.reason = reason
	ex.answer(status, filters.ClientBadHandshake, []byte(reason+"\n"), hdrs)
}

// upgrade turns the client connection into a push connection: registry entry,
// the 101 (or SSE 200) answer, an access-log line, and the connection's gnet
// context swapped from the HTTP client to a pushConn.
func (ex *exchange) upgrade(answer []byte) {
	l, cl, h, fc := ex.l, ex.cl, ex.l.srv.push, &ex.fc
	pc := &pushConn{l: l, c: cl.c, id: fc.PushID, wslot: -1, widx: -1, opened: l.now}
	if fc.Push == filters.PushSSE {
		pc.kind = kindSSE
	}
	pc.dec.Init(int(h.cfg.MaxMessage), l.push.pool)
	var first bool
	register := func() (err error) {
		first, err = h.reg.Add(pc.id, pc)
		return err
	}
	var err error
	if pc.kind == kindSSE && h.rings != nil {
		answer, err = ex.sseAttach(answer, pc, register)
	} else {
		err = register()
	}
	if err != nil {
		h.stats.refused.Add(1)
		ex.closeAfter = true
		ex.reason = fmt.Sprintf("client id already has push.max_per_client (%d) connections", h.cfg.MaxPerClient)
		ex.answer(429, filters.ClientTooManyPushConns, []byte("too many connections for this client id\n"), nil)
		return
	}
	if first && h.registrar != nil {
		h.registrar.Registered(pc.id)
	}
	ex.status, ex.cause = 101, filters.Success
	if pc.kind == kindSSE {
		ex.status = 200
	}
	ex.bytesOut = int64(len(answer))
	ex.logAccess()
	h.stats.accepted.Add(1)
	h.stats.open.Add(1)

	// The HTTP client is done with the connection: from here gnet's events for it
	// go to pc.
	cl.ex = nil
	l.retire(ex)
	l.removeClient(cl)
	if cl.onDrainFn != nil {
		l.srv.watcher.unwatch(cl.fd)
	}
	if cl.paused {
		cl.resume()
	}
	cl.state = stClosed
	cl.c.SetContext(pc)

	now := l.now
	pc.deadline = now + h.lifetimeOf(l.rnd.Uint32())
	if l.push.drainTill > 0 {
		pc.deadline = now // the gateway drains: reconnect elsewhere at once
	}
	// The first ping comes after a random part of the interval, so that devices
	// that connected together are not pinged together for ever after.
	pc.nextPing = now + h.pingInterval/2 + spread(l.rnd.Uint32(), h.pingInterval/2)
	l.push.schedule(pc)

	_, _ = pc.c.Write(answer)
	if pc.state != pcClosed && pc.c.InboundBuffered() > 0 {
		pc.onData() // frames sent right behind the handshake
	}
}

// sseAttach registers an SSE connection and appends to answer the events a
// reconnecting client missed (Last-Event-ID), as far as its id's replay ring still
// has them.
func (ex *exchange) sseAttach(answer []byte, pc *pushConn, register func() error) ([]byte, error) {
	v := ex.req.Header.Peek("Last-Event-ID")
	if len(v) == 0 {
		if q, ok := ex.fc.Arg("lastEventId"); ok { // EventSource polyfills pass it in the query
			v = []byte(q)
		}
	}
	last, replay := uint64(0), false
	if len(bytes.TrimSpace(v)) > 0 {
		last, replay = push.ParseLastEventID(v)
	}
	out, complete, err := ex.l.srv.push.rings.attach(answer, pc.id, last, replay, register)
	if !complete {
		ex.reason = "Last-Event-ID " + strconv.FormatUint(last, 10) + " older than the replay buffer: events were lost"
	}
	return out, err
}
