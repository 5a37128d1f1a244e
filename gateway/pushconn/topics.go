package pushconn

import (
	"errors"
	"slices"
	"strings"
	"time"

	"gozer/gateway/push"
)

// A connection's topics. The node's index (push.Topics) counts subscriptions
// per topic and client id; which topics each connection holds is kept here,
// per loop, so that a close unsubscribes exactly those and a connection with
// no topic costs nothing (Conn stays in its 128-byte size class).

var (
	// errConnTopics is a subscription over push.topics.max_per_conn.
	errConnTopics = errors.New("too many topics for this connection (push.topics.max_per_conn)")
	// errTopicClosed is a control message's topic outside push.topics.client_prefixes.
	errTopicClosed = errors.New("topic not open to subscription by devices (push.topics.client_prefixes)")
)

// Subscribe subscribes pc to topics (names checked by the caller) at connect,
// before Serve. On error some topics may be subscribed: the caller refuses the
// connection with Unregister, which undoes them. Loop goroutine.
func (pc *Conn) Subscribe(topics []string) error {
	for _, t := range topics {
		if err := pc.subscribe(t); err != nil {
			return err
		}
	}
	return nil
}

// subscribe adds one topic; subscribing again to a topic is a no-op.
func (pc *Conn) subscribe(topic string) error {
	p, h := pc.lp, pc.lp.hub
	cur := p.topics[pc]
	if slices.Contains(cur, topic) {
		return nil
	}
	if len(cur) >= h.Cfg.Topics.MaxPerConn {
		return errConnTopics
	}
	if err := h.Topics.Subscribe(topic, pc.id); err != nil {
		return err
	}
	if p.topics == nil {
		p.topics = make(map[*Conn][]string)
	}
	p.topics[pc] = append(cur, topic)
	return nil
}

// unsubscribe removes one topic; one pc does not hold is a no-op.
func (pc *Conn) unsubscribe(topic string) {
	p := pc.lp
	cur := p.topics[pc]
	i := slices.Index(cur, topic)
	if i < 0 {
		return
	}
	pc.lp.hub.Topics.Unsubscribe(topic, pc.id)
	cur = slices.Delete(cur, i, i+1)
	if len(cur) == 0 {
		delete(p.topics, pc)
		return
	}
	p.topics[pc] = cur
}

// unsubscribeAll drops every topic of pc: it leaves, or closed. For a device
// that was served (left), with a history, the subscriptions linger for its
// max_age (push.Topics.Linger), so the topic messages it misses while away
// are kept for its recovery; a refused connection's go at once.
func (pc *Conn) unsubscribeAll(left bool) {
	p := pc.lp
	var now time.Time
	if left && len(p.topics[pc]) > 0 {
		now = time.Now()
	}
	for _, t := range p.topics[pc] {
		if left {
			p.hub.Topics.Linger(t, pc.id, now)
		} else {
			p.hub.Topics.Unsubscribe(t, pc.id)
		}
	}
	delete(p.topics, pc)
}

// openToDevices reports whether a device may subscribe to topic by itself.
func openToDevices(prefixes []string, topic string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// control handles a text message when push.topics.client_subscribe is on: a
// control message ({"subscribe":"t"} / {"unsubscribe":"t"}) is applied and
// answered, and true returned; any other message is the caller's (upstream).
func (pc *Conn) control(payload []byte) bool {
	op, topic, err := push.ParseControl(payload)
	if op == push.NotControl {
		return false
	}
	h := pc.lp.hub
	switch {
	case err != nil:
	case op == push.Subscribe && !openToDevices(h.Cfg.Topics.ClientPrefixes, topic):
		err = errTopicClosed
	case op == push.Subscribe:
		err = pc.subscribe(topic)
	default:
		pc.unsubscribe(topic)
	}
	if err != nil {
		h.Stats.ControlRefused.Add(1)
		h.LogRefused(pc.id, "topic control message refused: "+err.Error())
	} else {
		h.Stats.ControlApplied.Add(1)
	}
	reply := push.AppendControlReply(pc.lp.scratch[:0], op, topic, err)
	p := pc.lp
	p.iov = append(p.iov[:0], push.AppendFrameHeader(p.hdr[:0], push.OpText, true, len(reply)), reply)
	_, _ = pc.c.Writev(p.iov)
	p.iov[1] = nil
	p.scratch = reply[:0]
	if pc.state != pcClosed && int64(pc.c.OutboundBuffered()) > h.Limits().MaxOutbound {
		pc.slowClose() // control messages from a peer that does not read the answers
	}
	return true
}
