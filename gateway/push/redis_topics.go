package push

import (
	"context"
	"slices"
	"time"
)

// TopicRegistry is the cluster-wide topic registry: topic → the nodes where
// it has a subscriber, as ClusterRegistry is for client ids (same TTL, same
// refresh by the Registrar). A ClusterRegistry may implement it; the push
// API then forwards POST /push/topic/{name} to the nodes it lists, and
// without it a topic reaches this node's subscribers only.
//
// Concurrency: as ClusterRegistry (any goroutine, blocking, never on a loop).
type TopicRegistry interface {
	// RefreshTopics records (again) that each topic has a subscriber on this
	// node, for the TTL.
	RefreshTopics(ctx context.Context, topics []string) error
	// UnregisterTopics removes this node from each topic's entry.
	UnregisterTopics(ctx context.Context, topics []string) error
	// TopicNodes appends the nodes where topic has a subscriber (this one
	// included, if it has) and returns it, sorted.
	TopicNodes(ctx context.Context, topic string, dst []string) ([]string, error)
}

// Redis layout of topics: one sorted set per topic, exactly like a client
// id's (member = node, score = expiry in ms by the server's clock; the same
// scripts), under a hash-tagged key: the tag is the topic, so each key sits
// in the slot of its topic on a Redis Cluster, and the registrar's pipelines
// spread over the cluster's shards.
const redisTopicPrefix = "gozer:push:topic:"

// redisTopicKey is the key of topic: gozer:push:topic:{name}.
func redisTopicKey(topic string) string { return redisTopicPrefix + "{" + topic + "}" }

func redisTopicKeys(topics []string) []string {
	keys := make([]string, len(topics))
	for i, t := range topics {
		keys[i] = redisTopicKey(t)
	}
	return keys
}

// RefreshTopics implements TopicRegistry, pipelined 1,000 topics per round trip.
func (c *RedisCluster) RefreshTopics(ctx context.Context, topics []string) error {
	for len(topics) > 0 {
		n := min(len(topics), redisBatch)
		if err := c.pipeline(ctx, "refresh topics", scriptTouch, "", redisTopicKeys(topics[:n]), c.node, c.ttlMS); err != nil {
			return err
		}
		topics = topics[n:]
	}
	return nil
}

// UnregisterTopics implements TopicRegistry, pipelined like RefreshTopics.
func (c *RedisCluster) UnregisterTopics(ctx context.Context, topics []string) error {
	for len(topics) > 0 {
		n := min(len(topics), redisBatch)
		if err := c.pipeline(ctx, "unregister topics", scriptRemove, "", redisTopicKeys(topics[:n]), c.node); err != nil {
			return err
		}
		topics = topics[n:]
	}
	return nil
}

// TopicNodes implements TopicRegistry.
func (c *RedisCluster) TopicNodes(ctx context.Context, topic string, dst []string) ([]string, error) {
	return c.live(ctx, "topic nodes", redisTopicKey(topic), dst)
}

var _ TopicRegistry = (*RedisCluster)(nil)

// MemoryCluster's topics: the fake keeps them as it keeps ids, under a key
// of their own so the two never mix.
func memoryTopicKey(topic string) string { return "\x00topic:" + topic }

func (n *memoryNode) RefreshTopics(ctx context.Context, topics []string) error {
	keys := make([]string, len(topics))
	for i, t := range topics {
		keys[i] = memoryTopicKey(t)
	}
	return n.Refresh(ctx, keys)
}

func (n *memoryNode) UnregisterTopics(ctx context.Context, topics []string) error {
	for _, t := range topics {
		if err := n.Unregister(ctx, memoryTopicKey(t)); err != nil {
			return err
		}
	}
	return nil
}

func (n *memoryNode) TopicNodes(ctx context.Context, topic string, dst []string) ([]string, error) {
	m := n.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, "topic nodes"); err != nil {
		return dst, err
	}
	start := len(dst)
	for node := range m.liveLocked(memoryTopicKey(topic), m.now()) {
		dst = append(dst, node)
	}
	slices.Sort(dst[start:])
	return dst, nil
}

var _ TopicRegistry = (*memoryNode)(nil)

// topicCallTimeout bounds the topic registry lookup of one topic push.
const topicCallTimeout = time.Second
