package pushconn

import (
	"github.com/panjf2000/gnet/v2"

	"gozer/gateway/push"
)

// Resume is what a connecting device said about the messages it has.
type Resume struct {
	// LastID is the id of the last message it got; with Resume it wants what
	// came after.
	LastID uint64
	Resume bool
	// IDs: a websocket device that asked for message ids (?last_id=).
	IDs bool
}

// Register makes a push connection of kind for client id on this loop and puts
// it in the registry. When the device resumes, the messages it missed are
// appended to answer (after the 101 or the SSE head) when this node's history
// has them; in cluster mode they come from Redis, after the connection serves
// (the connection holds its live messages until then). resync: its last id is
// gone from the history (known only without Redis). err: the id holds
// push.max_per_client connections already. The connection serves once Serve
// hands it its socket, in the same callback.
func (p *Loop) Register(id string, kind Kind, rs Resume, answer []byte) (pc *Conn, out []byte, resync bool, err error) {
	h := p.hub
	pc = &Conn{lp: p, id: id, kind: kind, opened: p.l.Now()}
	pc.timer.Init()
	pc.dec.Init(int(h.Cfg.MaxMessage), p.pool)
	if rs.IDs && h.History != nil {
		pc.flags.Store(pcIDs)
	}
	var first bool
	out = answer
	switch hist := h.History; {
	case hist == nil:
		first, err = h.Registry.Add(pc.id, pc)
	case rs.Resume && hist.Clustered():
		pc.setFlag(pcRecovering)
		first, err = hist.Recover(id, pc, rs.LastID, pc.replayed)
	default:
		var r push.Replay
		first, r, err = hist.Attach(id, pc, rs.LastID, rs.Resume)
		out, resync = pc.appendReplay(answer, r), r.Resync
	}
	if err != nil {
		return nil, answer, false, err
	}
	if first && h.Registrar != nil {
		h.Registrar.Registered(pc.id)
	}
	h.Stats.Accepted.Add(1)
	h.Stats.Open.Add(1)
	return pc, out, resync, nil
}

// Serve takes over c, the connection whose request Register accepted: from
// here gnet's events for it go to pc. It writes answer (the 101, or the SSE
// head, and the replay) and reads the frames the device sent behind its handshake.
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
	pc.unregister(false) // never served: its topics go at once
	pc.lp.hub.Stats.Open.Add(-1)
}
