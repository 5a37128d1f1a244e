package telemetry

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// logQueue is how many process-log lines may wait for the writer goroutine;
// past it lines are dropped (and the drop is counted in a later line).
const logQueue = 4096

// lineWriter hands the process log's lines to one goroutine that writes
// them, so that an event loop that logs never blocks on a slow stderr.
//
// Why not zerolog's diode: its writer goroutine polls the ring every 10 ms
// even when nothing is logged, and each poll is a timer that wakes a thread
// (and Go's sysmon with it), under load as when idle. Here the writer sleeps
// on a channel: a line wakes it, nothing else does. Measured on an idle Gozer
// with bench/ws.sh's configuration (perf stat -e
// raw_syscalls:sys_enter,context-switches,task-clock -p PID -- sleep 8, two
// runs each, machine at load 15): 570-710 → 370-500 context switches/s,
// 840-1000 → 450-600 syscalls/s, 8.6-9.4 → 5.6-7.4 ms of CPU per second. What
// is left is mostly sysmon, woken again each time it takes the P back from a
// loop parked in epoll_wait over 10 ms (after each 100 ms tick).
//
// Concurrency: Write may be called from any goroutine and never blocks;
// Close once, after which lines are dropped.
type lineWriter struct {
	out    io.Writer
	lines  chan *[]byte
	missed atomic.Int64 // lines dropped since the last report
	mu     sync.RWMutex // Write holds it shared and Close alone: no send on a closed channel
	closed bool
	done   chan struct{}
}

// linePool recycles the copies of lines (zerolog reuses its buffer once
// Write returns).
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// newLineWriter starts the goroutine that writes to out.
func newLineWriter(out io.Writer) *lineWriter {
	w := &lineWriter{out: out, lines: make(chan *[]byte, logQueue), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues a copy of p; when the queue is full (or the writer closed)
// the line is dropped and counted.
func (w *lineWriter) Write(p []byte) (int, error) {
	b := linePool.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	w.mu.RLock()
	sent := false
	if !w.closed {
		select {
		case w.lines <- b:
			sent = true
		default:
		}
	}
	w.mu.RUnlock()
	if !sent {
		w.missed.Add(1)
		linePool.Put(b)
	}
	return len(p), nil
}

// run writes the queued lines, and says how many were dropped before the
// next line that gets through.
func (w *lineWriter) run() {
	defer close(w.done)
	for b := range w.lines {
		if n := w.missed.Swap(0); n > 0 {
			fmt.Fprintf(w.out, `{"level":"warn","message":"process log dropped %d lines"}`+"\n", n)
		}
		_, _ = w.out.Write(*b)
		if cap(*b) <= 64<<10 { // keep a huge line's buffer out of the pool
			linePool.Put(b)
		}
	}
	if n := w.missed.Swap(0); n > 0 {
		fmt.Fprintf(w.out, `{"level":"warn","message":"process log dropped %d lines"}`+"\n", n)
	}
}

// Close writes what is queued and stops the goroutine.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.lines)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}
