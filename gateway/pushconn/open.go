package pushconn

import (
	"github.com/panjf2000/gnet/v2"
)

// Register makes a push connection of kind for client id on this loop and puts
// it in the registry (and, for SSE with a history, appends to answer the events
// a reconnecting device missed since lastID, when replay). complete is false
// when lastID was older than the history holds. err: the id holds
// push.max_per_client connections already. The connection serves once Serve
// hands it its socket, in the same callback.
func (p *Loop) Register(id string, kind Kind, answer []byte, lastID uint64, replay bool) (pc *Conn, out []byte, complete bool, err error) {
	h := p.hub
	pc = &Conn{lp: p, id: id, kind: kind, opened: p.l.Now()}
	pc.timer.Init()
	pc.dec.Init(int(h.Cfg.MaxMessage), p.pool)
	var first bool
	register := func() (err error) {
		first, err = h.Registry.Add(pc.id, pc)
		return err
	}
	out, complete = answer, true
	if kind == SSE && h.History != nil {
		out, complete, err = h.History.Attach(answer, id, lastID, replay, register)
	} else {
		err = register()
	}
	if err != nil {
		return nil, answer, true, err
	}
	if first && h.Registrar != nil {
		h.Registrar.Registered(pc.id)
	}
	h.Stats.Accepted.Add(1)
	h.Stats.Open.Add(1)
	return pc, out, complete, nil
}

// Serve takes over c, the connection whose request Register accepted: from
// here gnet's events for it go to pc. It writes answer (the 101, or the SSE
// head and replay) and reads the frames the device sent behind its handshake.
func (pc *Conn) Serve(c gnet.Conn, answer []byte) {
	p, h := pc.lp, pc.lp.hub
	pc.c = c
	c.SetContext(pc)
	now := p.l.Now()
	pc.deadline = now + h.LifetimeOf(p.l.Rand.Uint32())
	if p.drainTill > 0 {
		pc.deadline = now // the gateway drains: reconnect elsewhere at once
	}
	// The first ping comes after a random part of the interval, so that devices
	// that connected together are not pinged together for ever after.
	ping := h.Limits().PingInterval
	pc.nextPing = now + ping/2 + spread(p.l.Rand.Uint32(), ping/2)
	p.wheel.Schedule(pc)

	_, _ = c.Write(answer)
	if pc.state != pcClosed && c.InboundBuffered() > 0 {
		pc.OnData() // frames sent right behind the handshake
	}
}

// Unregister takes a connection that Register made, and that will not serve,
// out of the registry.
func (pc *Conn) Unregister() {
	pc.state = pcClosed
	pc.setFlag(pcGone)
	pc.unregister()
	pc.lp.hub.Stats.Open.Add(-1)
}
