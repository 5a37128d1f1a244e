package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/rs/zerolog"
)

// Memory after a burst. When many connections that held big buffers (slow
// readers, a download burst) close at once, their buffers go back to pools
// (gnet keeps its read and write buffers in sync.Pools) or become garbage. Go
// empties a sync.Pool only over two collections, and collects only when the
// heap grows or every two minutes; a quiet gateway then holds the burst's
// memory for minutes, and returns it to the OS slower still. The reclaimer
// notices that connections closed while the runtime did not collect, runs
// the two collections itself and hands the freed pages back at once
// (debug.FreeOSMemory), so that memory returns near its baseline within a
// tick or two of the burst ending.
//
// It does nothing while the runtime collects on its own (allocation is going
// on: the pools are being emptied anyway), while nothing closed, and while the
// heap is small; and when a reclaim frees little, it waits twice as long
// before the next one (up to reclaimMaxBackoff ticks), so that a large, steady
// heap (a million idle push connections) is not collected for nothing every
// tick.

// reclaimFloor is the heap below which the reclaimer does not bother.
const reclaimFloor = 32 << 20

// reclaimMaxBackoff bounds the wait after fruitless reclaims, in ticks.
const reclaimMaxBackoff = 16

// reclaimer runs on its own goroutine (run); nothing else touches it.
type reclaimer struct {
	every  time.Duration
	closed func() int64 // connections closed since start
	log    zerolog.Logger

	samples   []metrics.Sample
	lastGCs   uint64
	lastClose int64
	backoff   int // ticks to wait after a fruitless reclaim
	waited    int
}

// Reclaimer metrics: collections so far, and the heap the OS gives us that is
// not returned (objects, free spans not yet released).
var reclaimMetrics = []string{
	"/gc/cycles/total:gc-cycles",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/unused:bytes",
}

func newReclaimer(every time.Duration, closed func() int64, log zerolog.Logger) *reclaimer {
	r := &reclaimer{every: every, closed: closed, log: log, backoff: 1}
	for _, name := range reclaimMetrics {
		r.samples = append(r.samples, metrics.Sample{Name: name})
	}
	return r
}

// read returns the number of collections and the heap held.
func (r *reclaimer) read() (gcs, held uint64) {
	metrics.Read(r.samples)
	gcs = r.samples[0].Value.Uint64()
	for _, s := range r.samples[1:] {
		held += s.Value.Uint64()
	}
	return gcs, held
}

// run reclaims until stop is closed.
func (r *reclaimer) run(stop <-chan struct{}) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	r.lastGCs, _ = r.read()
	r.lastClose = r.closed()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.tick()
		}
	}
}

// tick decides whether to reclaim now, and does.
func (r *reclaimer) tick() {
	gcs, held := r.read()
	closed := r.closed()
	collected := gcs != r.lastGCs
	r.lastGCs = gcs
	if collected || closed == r.lastClose || held < reclaimFloor {
		return
	}
	if r.waited++; r.waited < r.backoff {
		return
	}
	r.waited = 0
	start := time.Now()
	// Two collections: the first moves the pools' contents to their victim
	// caches, the second frees them; FreeOSMemory collects and releases.
	runtime.GC()
	debug.FreeOSMemory()
	var after uint64
	r.lastGCs, after = r.read()
	since := closed - r.lastClose
	r.lastClose = r.closed()
	freed := int64(held) - int64(after)
	lvl := zerolog.DebugLevel
	if freed > int64(held)/8 {
		r.backoff = 1
		lvl = zerolog.InfoLevel
	} else {
		r.backoff = min(r.backoff*2, reclaimMaxBackoff)
	}
	r.log.WithLevel(lvl).Int64("freed_bytes", freed).Uint64("heap_bytes", after).Int64("connections_closed", since).
		Dur("took", time.Since(start)).Msg("returned memory to the OS after connections closed")
}
