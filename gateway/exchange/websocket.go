package exchange

import (
	"fmt"

	"gozer/filters"
	"gozer/gateway/origin"
	"gozer/gateway/originconn"
	"gozer/gateway/push"
	"gozer/gateway/tunnel"
)

// Websocket proxying: a request that asks to upgrade to websocket, routed to
// an origin whose websocket.enabled is on, goes to the origin as an upgrade,
// through the same admission and attempts as any request. A route may say
// otherwise (filters.WebSocketChoice): a filter's ctx.route{websocket =
// true|false} first, else the route table's route that chose the origin
// (routes[].websocket). The origin's 101 turns the client connection and the
// origin connection into a tunnel (gateway/tunnel), which holds the request's
// bulkhead slot until it ends; any other answer is relayed as a response.

// upgradeHeaders are the hop-by-hop headers of a websocket upgrade, which
// AppendForwardRequest drops and the upgrade to the origin puts back.
const upgradeHeaders = "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"

// wantsWebSocket reports whether the request asks for a websocket upgrade
// (an Upgrade header naming websocket).
func (ex *Exchange) wantsWebSocket() bool {
	v := ex.req.Header.Peek("Upgrade")
	return len(v) > 0 && push.HasToken(v, "websocket")
}

// startWebSocket decides, once the request is admitted to o, whether it goes
// to o as a websocket upgrade: it checks the handshake (400, 426) and takes a
// tunnel slot under o's websocket.max_tunnels (503). It reports false when it
// answered the request itself.
func (ex *Exchange) startWebSocket(o *origin.Origin) bool {
	ws := ex.flt.fc.Route.WebSocket.Tunnels(o.Config != nil && o.Config.WebSocket.Enabled)
	if !ws || !ex.wantsWebSocket() || ex.lp.tunnels == nil {
		return true // a plain request: the Upgrade header goes no further
	}
	req := &ex.req
	if !ex.body.done {
		ex.out.closeAfter = true
		ex.log.reason = "websocket upgrade with a request body"
		ex.answer(400, filters.ClientBadHandshake, []byte(ex.log.reason+"\n"), nil)
		return false
	}
	if _, err := push.CheckHandshake(req.Header.Method(), req.Header.Protocol(), &req.Header); err != nil {
		status, reason, hdrs := ex.handshakeRefusal(err)
		ex.out.closeAfter = true
		ex.log.reason = reason
		ex.answer(status, filters.ClientBadHandshake, []byte(reason+"\n"), hdrs)
		return false
	}
	counts := ex.lp.tunnels.Counts(o.Name)
	max := 0
	if o.Config != nil {
		max = o.Config.WebSocket.MaxTunnels
	}
	if !counts.Acquire(max) {
		ex.fail(filters.LocalTunnelLimit, fmt.Sprintf("origin %s has %d websocket tunnels open (websocket.max_tunnels)", o.Name, max))
		return false
	}
	ex.out.ws = true
	return true
}

// releaseTunnelSlot gives back a tunnel slot taken for an upgrade that did
// not become a tunnel (the origin answered something else, or failed).
func (ex *Exchange) releaseTunnelSlot() {
	if ex.out.ws && ex.try.origin != nil && ex.lp.tunnels != nil {
		ex.lp.tunnels.Counts(ex.try.origin.Name).Open.Add(-1)
	}
	ex.out.ws = false
}

// openTunnel turns the exchange into a tunnel after the origin's 101: head is
// the 101 as the origin sent it (through the outbound filters first:
// upgradeOutbound), n how many bytes of the origin's buffer it takes. The tunnel takes the origin connection, the client connection, the
// tunnel slot and the isolation; the exchange ends without a log line (the
// tunnel writes one when it ends).
func (ex *Exchange) openTunnel(head []byte, n int) {
	c, ok := ex.try.conn.(*originconn.Conn)
	if !ok {
		ex.fail(filters.LocalInternal, "websocket upgrade over an origin connection that cannot carry a tunnel")
		return
	}
	l, t := ex.lp.l, &ex.try
	h := append(l.Buf[:0], head...) // the origin's buffer moves on at Discard
	l.Buf = h[:0]
	if ex.flt.chain != nil {
		// The origin's bytes behind its 101 stay in its buffer meanwhile:
		// outbound filters are sync, and the tunnel relays them at Serve.
		if h, ok = ex.upgradeOutbound(h); !ok {
			return // a fatal filter or a head that does not parse: answered
		}
	}
	now := l.Now()
	c.Discard(n)
	ex.log.status, ex.log.cause = 101, filters.Success
	ex.out.headDone = true
	t.headAt = now
	ex.endAttempt(true)
	ex.countRequest()
	in, _ := ex.ds.Bytes()
	cl := ex.ds.Client()
	spec := tunnel.Spec{
		Origin: t.origin, Server: t.server, Conn: c, MaxBuffered: ex.snap.Limits.MaxBuffered,
		Counts: ex.lp.tunnels.Counts(t.origin.Name), Admitted: t.admitted, AdmitAt: t.admitAt, Latency: now - t.admitAt,
		Log: tunnel.LogInfo{
			RequestID: append([]byte(nil), ex.id...), TraceID: append([]byte(nil), ex.TraceID()...),
			Client: cl.Remote, Method: append([]byte(nil), ex.req.Header.Method()...),
			Path:    append([]byte(nil), filters.PathOf(ex.req.Header.RequestURI())...),
			Started: ex.log.started, HeadIn: in, TLS: cl.TLS,
		},
	}
	if t.origin.Config != nil {
		spec.Settings = t.origin.Config.WebSocket
	}
	gc, ok := ex.ds.Hijack()
	ex.ds = nil
	if !ok {
		// A downstream that cannot be handed over (not today's): the
		// exchange's reset gives the slot and the isolation back.
		c.Abort()
		t.conn = nil
		ex.lp.retire(ex)
		return
	}
	// From here the tunnel owns the slot, the isolation, both connections
	// and the client's count of requests in flight.
	t.admitted, t.conn, ex.out.ws = false, nil, false
	spec.Peer, ex.peer = ex.peer, nil
	ex.lp.retire(ex)
	ex.lp.tunnels.Open(spec).Serve(gc, h)
}
