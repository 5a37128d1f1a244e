package push

import "context"

// The Registrar's topic side: it keeps the cluster's topic registry
// (TopicRegistry) current for this node's topics as it does for client ids:
// every topic that appears or disappears here is posted (TopicChanged, from
// the event loops, never blocking), and Run writes what the local index holds
// when it gets to it; every ttl/3, and after the registry lost its data, all
// local topics are refreshed.

// TrackTopics makes the registrar keep the cluster's topic registry current
// for t. Call it before Run, once; it does nothing when the ClusterRegistry is
// not a TopicRegistry. t's onChange must be r.TopicChanged.
func (r *Registrar) TrackTopics(t *Topics) {
	treg, ok := r.c.(TopicRegistry)
	if !ok {
		return
	}
	r.topics, r.treg = t, treg
	r.topicEvents = make(chan string, registrarQueue)
}

// TopicChanged tells the registrar that topic got its first subscriber on
// this node or lost its last one. It never blocks: a full queue drops the
// event (counted in Dropped), and the periodic refresh or the TTL repairs it.
// Any goroutine; Topics calls it with a shard lock held.
func (r *Registrar) TopicChanged(topic string) {
	if r.topicEvents == nil {
		return
	}
	select {
	case r.topicEvents <- topic:
	default:
		r.dropped.Add(1)
	}
}

// applyTopics writes the local state of topic and of the topic events queued
// behind it, in one batch each way.
func (r *Registrar) applyTopics(ctx context.Context, first string) {
	batch := map[string]struct{}{first: {}}
	for len(batch) < registrarBatch {
		select {
		case t := <-r.topicEvents:
			batch[t] = struct{}{}
			continue
		default:
		}
		break
	}
	var add, del []string
	for t := range batch {
		if r.topics.Has(t) {
			add = append(add, t)
		} else {
			del = append(del, t)
		}
	}
	if len(add) > 0 {
		r.call(ctx, "register topics", func(ctx context.Context) error { return r.treg.RefreshTopics(ctx, add) })
	}
	if len(del) > 0 {
		r.call(ctx, "unregister topics", func(ctx context.Context) error { return r.treg.UnregisterTopics(ctx, del) })
	}
}

// refreshTopics refreshes every local topic; false when a call failed.
func (r *Registrar) refreshTopics(ctx context.Context) bool {
	if r.topics == nil {
		return true
	}
	all := r.topics.Names(nil)
	if len(all) == 0 {
		return true
	}
	return r.call(ctx, "refresh topics", func(ctx context.Context) error { return r.treg.RefreshTopics(ctx, all) })
}

// leaveTopics takes this node out of every local topic's entry (Run's exit).
func (r *Registrar) leaveTopics(ctx context.Context) {
	if r.topics == nil {
		return
	}
	if all := r.topics.Names(nil); len(all) > 0 {
		r.call(ctx, "unregister topics", func(ctx context.Context) error { return r.treg.UnregisterTopics(ctx, all) })
	}
}
