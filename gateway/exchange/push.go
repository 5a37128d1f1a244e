package exchange

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"gozer/filters"
	"gozer/gateway/httpcodec"
	"gozer/gateway/push"
	"gozer/gateway/pushconn"
)

// pushKind tells whether the request is at one of the push paths.
func (ex *Exchange) pushKind() filters.PushKind {
	p := filters.PathOf(ex.req.Header.RequestURI())
	cfg := &ex.snap.Config.Push
	switch {
	case string(p) == cfg.WSPath:
		return filters.PushWebSocket
	case string(p) == cfg.SSEPath:
		return filters.PushSSE
	}
	return filters.PushNone
}

// pushEndpoint answers a request at a push path after the inbound filters ran:
// an accepted one becomes a push connection; one no filter accepted gets 403,
// so push is never open without an auth filter.
func (ex *Exchange) pushEndpoint() {
	fc, pl := &ex.flt.fc, ex.lp.push
	if fc.PushID == "" {
		pl.Hub().Stats.Refused.Add(1)
		ex.fail(filters.ClientPushNotAccepted, "no inbound filter accepted the push connection (ctx.push_accept)")
		return
	}
	origin, allowed, cross := fc.CORSAllowed(filters.CORSPush)
	if cross && !allowed {
		// A browser page of another origin: only with the operator's consent
		// (push.cors, or a filter's ctx.cors), so that a token leaked to a
		// hostile page cannot be used from it.
		ex.refuseOrigin("push connection from origin " + strconv.Quote(string(origin)) + " not allowed by push.cors")
		return
	}
	if max := pl.Hub().Cfg.Topics.MaxPerConn; len(fc.PushTopics) > max {
		pl.Hub().Stats.Refused.Add(1)
		ex.out.closeAfter = true
		ex.log.reason = fmt.Sprintf("%d topics asked, push.topics.max_per_conn is %d", len(fc.PushTopics), max)
		ex.answer(400, filters.ClientTooManyTopics, []byte("too many topics for one connection\n"), nil)
		return
	}
	req, l := &ex.req, ex.lp.l
	if fc.Push == filters.PushSSE && string(req.Header.Method()) != "GET" {
		ex.refusePush(405, "SSE needs GET", []filters.Header{{Name: "Allow", Value: "GET"}})
		return
	}
	if req.Framing != httpcodec.FramingNone && !(req.Framing == httpcodec.FramingLength && req.ContentLength == 0) {
		ex.refusePush(400, "push request with a body", nil)
		return
	}
	kind := pushconn.WebSocket
	var accept []byte
	switch fc.Push {
	case filters.PushWebSocket:
		key, err := push.CheckHandshake(req.Header.Method(), req.Header.Protocol(), &req.Header)
		if err != nil {
			ex.refusePush(ex.handshakeRefusal(err))
			return
		}
		accept = push.AppendAccept(l.Buf[:0], key)
	case filters.PushSSE:
		kind = pushconn.SSE
		accept = push.AppendSSEResponse(l.Buf[:0])
		if cross {
			accept = ex.appendCORS(accept, origin)
		}
	}
	l.Buf = accept[:0]
	ex.upgrade(kind, accept)
}

// refusePush answers a push request that cannot become a push connection, and
// closes the connection: a device that got the handshake wrong should not go
// on talking HTTP on it.
func (ex *Exchange) refusePush(status int, reason string, hdrs []filters.Header) {
	ex.lp.push.Hub().Stats.Refused.Add(1)
	ex.out.closeAfter = true
	ex.log.reason = reason
	ex.answer(status, filters.ClientBadHandshake, []byte(reason+"\n"), hdrs)
}

// handshakeRefusal is the answer to a websocket handshake push.CheckHandshake
// refused (a *push.HandshakeError): its status and reason, and on a 426 the
// version to use (the answer then says Upgrade: websocket). Push devices and
// proxied websockets refuse alike.
func (ex *Exchange) handshakeRefusal(err error) (status int, reason string, hdrs []filters.Header) {
	var he *push.HandshakeError
	errors.As(err, &he)
	if he.Status == 426 {
		hdrs = []filters.Header{{Name: "Sec-WebSocket-Version", Value: "13"}}
		ex.out.upgradeTo = "websocket"
	}
	return he.Status, he.Reason, hdrs
}

// refuseOrigin answers 403 to a push request from a browser page whose
// origin is not allowed, and closes the connection.
func (ex *Exchange) refuseOrigin(reason string) {
	ex.lp.push.Hub().Stats.Refused.Add(1)
	ex.out.closeAfter = true
	ex.log.reason = reason
	ex.answer(403, filters.ClientOriginRefused, []byte(reason+"\n"), nil)
}

// appendCORS adds the CORS headers of an allowed origin to the SSE answer's
// head (which ends with its empty line): an EventSource of another origin
// is given its stream only with them.
func (ex *Exchange) appendCORS(head, origin []byte) []byte {
	head = head[:len(head)-2]
	var buf [4]filters.Header
	for _, h := range ex.flt.fc.AppendCORSHeaders(buf[:0], origin) {
		head = append(append(append(append(head, h.Name...), ": "...), h.Value...), "\r\n"...)
	}
	return append(head, "Vary: Origin\r\n\r\n"...)
}

// upgrade turns the client connection into a push connection: registry entry,
// the 101 (or SSE 200) answer with the replay of what a resuming device
// missed, the access-log line, and the connection handed from the downstream
// to a pushconn.Conn.
func (ex *Exchange) upgrade(kind pushconn.Kind, answer []byte) {
	fc, pl := &ex.flt.fc, ex.lp.push
	rs, ok := ex.resumeOf(kind)
	if !ok {
		ex.refusePush(400, "bad last_id: want the decimal id of the last message received (empty or 0: none yet)", nil)
		return
	}
	pc, answer, resync, err := pl.Register(fc.PushID, kind, rs, answer)
	if err != nil {
		pl.Hub().Stats.Refused.Add(1)
		ex.out.closeAfter = true
		ex.log.reason = fmt.Sprintf("client id already has push.max_per_client (%d) connections", pl.Hub().Cfg.MaxPerClient)
		ex.answer(429, filters.ClientTooManyPushConns, []byte("too many connections for this client id\n"), nil)
		return
	}
	if err := pc.Subscribe(fc.PushTopics); err != nil {
		// Over the per-connection bound was refused above: here the client
		// id holds its share of the node's topics, or the node holds
		// push.topics.max_per_node topics already. Register counted the
		// connection accepted; it stays counted (counters never go down)
		// and is counted refused too.
		pc.Unregister()
		pl.Hub().Stats.Refused.Add(1)
		ex.out.closeAfter = true
		ex.log.reason = err.Error()
		if errors.Is(err, push.ErrClientTopics) {
			ex.answer(400, filters.ClientTooManyTopics, []byte("too many topics for this client id\n"), nil)
			return
		}
		ex.answer(503, filters.LocalTooManyTopics, []byte("too many topics on this node, retry later\n"), []filters.Header{{Name: "Retry-After", Value: "5"}})
		return
	}
	if resync {
		ex.log.reason = "last message id " + strconv.FormatUint(rs.LastID, 10) + " is not in the history: told to resync"
	}
	ex.log.status, ex.log.cause = 101, filters.Success
	if kind == pushconn.SSE {
		ex.log.status = 200
	}
	ex.log.upgradeOut = int64(len(answer))
	ex.logAccess()
	c, ok := ex.ds.Hijack()
	ex.ds = nil
	ex.lp.retire(ex)
	if !ok {
		pc.Unregister() // a downstream that cannot be handed over (not today's)
		return
	}
	pc.Serve(c, answer)
}

// resumeOf is what the device says about the messages it has. SSE:
// Last-Event-ID, or ?last_event_id= / ?lastEventId= (EventSource polyfills pass
// it in the query); one that is not a number of ours resumes from nothing,
// which tells the device to resync. Websocket: ?last_id= asks for message ids,
// and resumes after its value unless it is empty or 0; ok is false when it is
// not a decimal id.
func (ex *Exchange) resumeOf(kind pushconn.Kind) (rs pushconn.Resume, ok bool) {
	fc := &ex.flt.fc
	if kind == pushconn.WebSocket {
		q, has := fc.Arg("last_id")
		if !has {
			return rs, true
		}
		rs.IDs = true
		if q == "" || q == "0" {
			return rs, true
		}
		rs.LastID, ok = push.ParseLastEventID([]byte(q))
		rs.Resume = ok
		return rs, ok
	}
	v := ex.req.Header.Peek("Last-Event-ID")
	if len(v) == 0 {
		for _, name := range [...]string{"last_event_id", "lastEventId"} {
			if q, has := fc.Arg(name); has {
				v = []byte(q)
				break
			}
		}
	}
	if len(bytes.TrimSpace(v)) == 0 {
		return rs, true
	}
	rs.LastID, _ = push.ParseLastEventID(v)
	rs.Resume = true
	return rs, true
}
