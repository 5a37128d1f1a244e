package push

import (
	"context"
	"time"
)

// Lingering subscriptions: a device that disconnects keeps its topics for the
// history's max_age (SetLinger), as its client id stays "recently seen" for
// that long. A topic message meanwhile goes through the id's delivery path,
// which keeps it in the history (202 stored), so a device that reconnects
// with its last message id recovers topic messages as it recovers direct
// ones. Without a history (SetLinger 0) a leaving connection unsubscribes at
// once.

// maxLingering bounds the subscriptions kept for devices that left: over it a
// leaving connection unsubscribes at once (a device reconnecting in a loop
// cannot grow the list without bound).
const maxLingering = 1 << 20

// lingering is one subscription kept for a device that left, until due (unix ns).
type lingering struct {
	topic, id string
	due       int64
}

// SetLinger sets how long a leaving connection's subscriptions stay (0: none).
// Call before the loops serve (Hub building).
func (t *Topics) SetLinger(d time.Duration) { t.lingerFor = d }

// Linger undoes one Subscribe(topic, id) of a connection that leaves: at once
// without a linger time, else after it (SweepLoop). Any goroutine.
func (t *Topics) Linger(topic, id string, now time.Time) {
	if t.lingerFor <= 0 {
		t.Unsubscribe(topic, id)
		return
	}
	t.lingerMu.Lock()
	if len(t.lingering) >= maxLingering {
		t.lingerMu.Unlock()
		t.Unsubscribe(topic, id)
		return
	}
	// One constant delay: the list is in due order, a FIFO.
	t.lingering = append(t.lingering, lingering{topic: topic, id: id, due: now.Add(t.lingerFor).UnixNano()})
	t.lingerMu.Unlock()
}

// Sweep ends the lingering subscriptions due by now; it returns how many.
func (t *Topics) Sweep(now time.Time) int {
	ns := now.UnixNano()
	t.lingerMu.Lock()
	n := 0
	for n < len(t.lingering) && t.lingering[n].due <= ns {
		n++
	}
	due := append([]lingering(nil), t.lingering[:n]...)
	t.lingering = append(t.lingering[:0], t.lingering[n:]...)
	t.lingerMu.Unlock()
	for _, l := range due { // outside lingerMu: Unsubscribe takes a shard's lock
		t.Unsubscribe(l.topic, l.id)
	}
	return n
}

// Lingering is how many subscriptions are kept for devices that left.
func (t *Topics) Lingering() int {
	t.lingerMu.Lock()
	defer t.lingerMu.Unlock()
	return len(t.lingering)
}

// SweepLoop sweeps once a second until ctx ends (the hub's goroutine).
func (t *Topics) SweepLoop(ctx context.Context) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			t.Sweep(now)
		}
	}
}
