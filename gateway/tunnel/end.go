package tunnel

import (
	"github.com/rs/zerolog"

	"gozer/filters"
	"gozer/gateway/loop"
	"gozer/gateway/origin"
)

// LogInfo is what a tunnel's access-log line says of the request that
// opened it (copies: the exchange is recycled once the tunnel serves).
type LogInfo struct {
	RequestID, TraceID []byte
	Client             string
	Method, Path       []byte
	Started            int64 // when the request's head arrived
	HeadIn             int64 // the request as the client sent it (head and any body)
	TLS                *filters.TLSInfo
}

// The tunnel is its origin connection's owner (originconn.Owner).

// OriginOpen does not happen: the tunnel takes an open connection.
func (t *Tunnel) OriginOpen() {}

// OriginDialFailed does not happen: the tunnel takes an open connection.
func (t *Tunnel) OriginDialFailed(error) {}

// OriginTimeout does not happen: a tunneled origin connection has no read
// timer (the tunnel's idle_timeout stands for it).
func (t *Tunnel) OriginTimeout() {}

// OriginData: the origin sent bytes.
func (t *Tunnel) OriginData() { t.relayDown() }

// OriginWritable: the origin took what waited for it; the client is read
// again.
func (t *Tunnel) OriginWritable() {
	if t.state == stClosed || t.oGone {
		return
	}
	if t.reads.Paused() {
		t.reads.Resume(t.lp.l, t.c)
	}
	t.relayUp()
}

// OriginClosed: the origin connection closed. The client gets what the
// origin sent before it (within the close grace), then its connection closes.
func (t *Tunnel) OriginClosed(error) {
	t.oGone = true
	if t.why == whyNone {
		t.why = whyOrigin
	}
	t.closeClient()
}

// OnClose runs when gnet closed the client connection, whoever asked: the
// tunnel ends (its origin connection closes with it) and writes its line.
func (t *Tunnel) OnClose(err error) {
	if t.state == stClosed {
		return
	}
	if t.why == whyNone {
		t.why = whyClient
	}
	t.state = stClosed
	t.account() // what it held toward the client is gone with it
	lp := t.lp
	lp.wheel.Cancel(t)
	t.writable.Release(lp.l, t.fd)
	if !t.oGone {
		t.oGone = true
		t.oc.Abort()
	}
	sh := lp.l.Shared
	sh.ClientClosed()
	sh.Peers.End(t.spec.Peer) // the request in flight it was counted as
	t.spec.Peer = nil
	// The HTTP connection it was counted as.
	sh.Peers.CloseAddr(loop.AddrOf(t.c.RemoteAddr()))
	t.finishIsolation()
	t.spec.Counts.Open.Add(-1)
	t.logLine(err)
}

// finishIsolation gives the tunnel's slot of the origin's bulkhead (and
// adaptive limit) back: the tunnel held it from admission to its end.
func (t *Tunnel) finishIsolation() {
	s := &t.spec
	if !s.Admitted || s.Origin.Iso == nil {
		return
	}
	s.Admitted = false
	// The origin answered its 101: a success for the breaker, whatever the
	// conversation after it did; the latency is the origin's to the 101.
	s.Origin.Iso.FinishTimed(origin.Success, s.AdmitAt, s.Latency, t.lp.l.Now())
}

// logLine writes the tunnel's access-log line: the request that opened it
// (status 101), bytes each way, duration, who closed and the close code.
func (t *Tunnel) logLine(err error) {
	l, g := t.lp.l, &t.spec.Log
	now := l.Now()
	e := l.Log.Logger.Log()
	if e == nil {
		return
	}
	e.Bytes("request_id", g.RequestID).Bytes("trace_id", g.TraceID).Str("client", g.Client).
		Bytes("method", g.Method).Bytes("path", g.Path).Int("status", 101).Str("cause", filters.Success.Name).
		Str("origin", t.spec.Origin.Name).Str("server", t.spec.Server.Addr).Int("attempts", 1).
		Int64("bytes_in", g.HeadIn+t.up.bytes).Int64("bytes_out", t.headOut+t.down.bytes).
		Int64("duration_us", (now-g.Started)/1000)
	d := zerolog.Dict().Str("closed_by", whyNames[t.why]).Int64("bytes_up", t.up.bytes).
		Int64("bytes_down", t.down.bytes).Int64("duration_us", (now-t.opened)/1000)
	if t.code != 0 {
		d.Int("close_code", int(t.code))
	}
	if t.reason != "" {
		d.Str("reason", t.reason)
	} else if err != nil && t.why == whyClient {
		d.Str("reason", err.Error())
	}
	e.Dict("websocket", d)
	if tl := g.TLS; tl != nil {
		e.Dict("tls", zerolog.Dict().Str("version", tl.Version).Str("cipher", tl.Cipher).
			Str("sni", tl.SNI).Str("alpn", tl.ALPN).Bool("resumed", tl.Resumed))
	}
	e.Send()
}
