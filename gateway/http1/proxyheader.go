package http1

import (
	"net"

	"gozer/filters"
	"gozer/gateway/config"
	"gozer/gateway/httpcodec"
	"gozer/gateway/loop"
	"gozer/gateway/proxyproto"
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
	}
	lim := c.lp.l.Shared
	p, ok := lim.Peers.Open(c.addr.Addr())
	if !ok {
		c.refuseClient()
		return
	}
	c.peer = p
	c.state = stHead
	if c.c.InboundBuffered() > 0 {
		c.readHead()
	}
}

// refuseProxy closes a connection whose PROXY header is missing or malformed.
func (c *Conn) refuseProxy(reason string) {
	sh := c.lp.l.Shared
	sh.ProxyRefused.Add(1)
	sh.Sampled.Warn("proxy_protocol").Str("peer", c.remote).Str("reason", reason).
		Msg("connection closed: no valid PROXY protocol header")
	c.close()
}

// refuseClient answers a client over server.max_connections_per_ip (known
// only once the PROXY header named it) with a 429 and closes.
func (c *Conn) refuseClient() {
	sh := c.lp.l.Shared
	cause := filters.ClientTooManyConnections
	cfg := &sh.Snapshot().Config.Server
	sh.Sampled.Warn(cause.Name).Str("client", c.remote).Int("max_connections_per_ip", cfg.MaxConnectionsPerIP).
		Msg("connection refused: too many connections from one client")
	name := ""
	if cfg.StatusHeaders.Expose == config.ExposeAll {
		name = cause.Name
	}
	_, _ = c.c.Write(httpcodec.AppendError(c.lp.l.Buf[:0], cause.Status, name, "", nil, true))
	c.state = stHead // so that the close below drains what the client sent
	c.closeWhenFlushed()
}
