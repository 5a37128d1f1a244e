package http1

import (
	"net"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/peers"
	"gozer/gateway/proxyproto"
	"gozer/gateway/ratelimit"
)

// The PROXY protocol (listeners.proxy.proxy_protocol): a TCP load balancer in
// front of the gateway opens each connection with a header naming the client.
// The connection reads it before its first request head, within the same
// server.header_read_timeout; from then on the client it names is the
// connection's address everywhere (filters, X-Forwarded-For, the per-client
// caps, the logs, gnet's RemoteAddr for a push connection taking over). A
// connection without a valid header is closed without an answer: whatever
// sent it is not the load balancer, or not speaking HTTP.

// readProxyHeader reads the PROXY header at the start of the connection.
func (c *Conn) readProxyHeader() {
	buf, _ := c.c.Peek(-1)
	n, src, err := proxyproto.Parse(buf)
	if err != nil {
		c.refuseProxy(err.Error())
		return
	}
	if n == 0 {
		return // not complete yet
	}
	_, _ = c.c.Discard(n)
	if src.IsValid() {
		// LOCAL (the balancer's own health check) keeps the socket's address.
		ta := &net.TCPAddr{IP: src.Addr().AsSlice(), Port: int(src.Port())}
		if err := loop.SetRemoteAddr(c.c, ta); err != nil {
			c.lp.l.Shared.Log.Error().Err(err).Msg("PROXY protocol: cannot record the client's address; connection closed")
			c.close()
			return
		}
		c.setRemote(ta)
		if !c.admitClient() {
			return
		}
	}
	lim := c.lp.l.Shared
	p, ok := lim.Peers.Open(c.addr.Addr())
	if !ok {
		c.refuseClient(filters.ClientTooManyConnections, "too many connections from one client",
			"max_connections_per_ip", lim.Snapshot().Config.Server.MaxConnectionsPerIP)
		return
	}
	c.peer = p
	c.state = stHead
	if c.c.InboundBuffered() > 0 {
		c.readHead()
	}
}

// admitClient applies connection protection (the deny list, the client's
// rate of new connections) to the client the PROXY header named: the
// acceptor could not, since the socket's peer is the balancer. A denied
// client is closed without a word, one over the rate answered 429; both are
// counted and logged (sampled) as at accept.
func (c *Conn) admitClient() bool {
	sh := c.lp.l.Shared
	if sh.Limits == nil {
		return true
	}
	a := c.addr.Addr()
	p := &sh.Snapshot().Config.Protect
	var buf [16]byte
	switch sh.Limits.AdmitConn(a, peers.AppendKey(buf[:0], a), c.lp.l.Now(), p.NewConnectionsPerIP, p.NewConnectionsBurst) {
	case ratelimit.ConnDenied:
		if e := sh.Sampled.Warn(filters.ClientDenied.Name); e != nil {
			e.Str("client", c.remote).Str("cause", filters.ClientDenied.Name).
				Msg("connection refused: client network denied (protect.deny, /admin/deny)")
		}
		c.close()
		return false
	case ratelimit.ConnTooFast:
		c.refuseClient(filters.ClientTooManyConnections, "too many new connections per second from one client",
			"new_connections_per_ip", int(p.NewConnectionsPerIP))
		return false
	}
	return true
}

// refuseProxy closes a connection whose PROXY header is missing or malformed.
func (c *Conn) refuseProxy(reason string) {
	sh := c.lp.l.Shared
	sh.ProxyRefused.Add(1)
	sh.Sampled.Warn("proxy_protocol").Str("peer", c.remote).Str("reason", reason).
		Msg("connection closed: no valid PROXY protocol header")
	c.close()
}

// refuseClient answers a client over one of its caps (known only once the
// PROXY header named it) with cause's status and closes.
func (c *Conn) refuseClient(cause filters.Cause, msg, limit string, value int) {
	sh := c.lp.l.Shared
	cfg := &sh.Snapshot().Config.Server
	sh.Sampled.Warn(cause.Name).Str("client", c.remote).Int(limit, value).
		Msg("connection refused: " + msg)
	name := ""
	if cfg.StatusHeaders.Expose == config.ExposeAll {
		name = cause.Name
	}
	_, _ = c.c.Write(httpcodec.AppendError(c.lp.l.Buf[:0], cause.Status, name, "", nil, true))
	c.state = stHead // so that the close below drains what the client sent
	c.closeWhenFlushed()
}
