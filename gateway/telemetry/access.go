package telemetry

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// flushAt is how many bytes a loop collects before it hands its buffer to the writer.
const flushAt = 32 << 10

// AccessLog writes access-log lines collected by the event loops to a sink on its
// own goroutine, so that a slow disk or a blocked stdout never stalls a loop.
// Each loop owns a LoopWriter; buffers travel to the writer goroutine through a
// bounded channel. When the channel is full the buffer is dropped and counted:
// a gateway must keep serving rather than wait for its log. So is what the
// sink fails to write (a full disk, a collector that closed its pipe).
type AccessLog struct {
	sink    io.WriteCloser
	full    chan []byte
	free    chan []byte
	dropped atomic.Uint64 // bytes dropped with the channel full
	failed  atomic.Uint64 // bytes the sink's Write did not take, with an error
	lastErr atomic.Pointer[string]
	wg      sync.WaitGroup

	// What ReportDrops last said.
	reportMu       sync.Mutex
	reported       uint64 // bytes lost, both reasons
	reportedFailed uint64 // of which write errors
	reportedAt     time.Time
}

// dropReportEvery is how often at most ReportDrops logs a warning.
const dropReportEvery = 10 * time.Second

// NewAccessLog starts the writer goroutine. sink nil means the access log is off:
// every LoopWriter it returns then discards its lines without formatting them.
func NewAccessLog(sink io.WriteCloser) *AccessLog {
	a := &AccessLog{sink: sink}
	if sink == nil {
		return a
	}
	a.full = make(chan []byte, 64)
	a.free = make(chan []byte, 64)
	a.wg.Add(1)
	go a.run()
	return a
}

func (a *AccessLog) run() {
	defer a.wg.Done()
	for b := range a.full {
		if n, err := a.sink.Write(b); err != nil {
			msg := err.Error()
			a.lastErr.Store(&msg) // before the count: a report that sees the count sees its error
			a.failed.Add(uint64(len(b) - n))
		}
		select {
		case a.free <- b[:0]:
		default:
		}
	}
}

// Dropped is how many bytes of access log were dropped because the sink was too slow.
func (a *AccessLog) Dropped() uint64 { return a.dropped.Load() }

// Failed is how many bytes of access log the sink failed to write (its Write
// returned an error: ENOSPC, EPIPE, ...).
func (a *AccessLog) Failed() uint64 { return a.failed.Load() }

// ReportDrops logs a warning when access-log bytes were dropped or failed
// since its last one, at most once per dropReportEvery: a sink that stops
// taking lines loses them on every flush, and the warning must not flood the
// process log in turn. The server's ticker calls it, often; safe from any
// goroutine.
func (a *AccessLog) ReportDrops(now time.Time, log zerolog.Logger) {
	a.reportDrops(now, log, dropReportEvery)
}

// ReportDropsAtExit is ReportDrops without the wait: what the last flushes
// lost, said once the ticker has stopped.
func (a *AccessLog) ReportDropsAtExit(log zerolog.Logger) {
	a.reportDrops(time.Now(), log, 0)
}

func (a *AccessLog) reportDrops(now time.Time, log zerolog.Logger, every time.Duration) {
	a.reportMu.Lock()
	defer a.reportMu.Unlock()
	slow, failed := a.dropped.Load(), a.failed.Load()
	lost := slow + failed
	if lost == a.reported || now.Sub(a.reportedAt) < every {
		return
	}
	ev := log.Warn().Uint64("lost_bytes", lost-a.reported).
		Uint64("slow_sink_bytes_total", slow).Uint64("write_error_bytes_total", failed)
	if e := a.lastErr.Load(); e != nil && failed != a.reportedFailed {
		ev = ev.Str("last_error", *e) // only when this report's loss has write errors
	}
	ev.Msg("access log lines lost: its sink (log.access_log) takes them slower than they come, or fails to write them")
	a.reported, a.reportedFailed, a.reportedAt = lost, failed, now
}

// Close writes what the writer goroutine holds and closes the sink. Call it only
// after every LoopWriter has flushed for the last time.
func (a *AccessLog) Close() error {
	if a.sink == nil {
		return nil
	}
	close(a.full)
	a.wg.Wait()
	return a.sink.Close()
}

// LoopWriter collects one event loop's access-log lines. It is owned by that loop's
// goroutine: Logger, Write and Flush must only be called there (or after the loop
// has stopped).
type LoopWriter struct {
	a   *AccessLog
	buf []byte
	// Logger writes one JSON line per event into this writer; it is disabled when
	// the access log is off, so building a line costs nothing then.
	Logger zerolog.Logger
}

// NewLoopWriter returns a writer for one event loop.
func (a *AccessLog) NewLoopWriter() *LoopWriter {
	w := &LoopWriter{a: a}
	if a.sink == nil {
		w.Logger = zerolog.Nop()
		return w
	}
	w.buf = make([]byte, 0, flushAt+4096)
	w.Logger = zerolog.New(w).With().Timestamp().Logger()
	return w
}

// Write appends one line; it never blocks.
func (w *LoopWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) >= flushAt {
		w.Flush()
	}
	return len(p), nil
}

// Flush hands the collected lines to the writer goroutine without waiting.
func (w *LoopWriter) Flush() {
	if len(w.buf) == 0 || w.a.sink == nil {
		return
	}
	select {
	case w.a.full <- w.buf:
		select {
		case w.buf = <-w.a.free:
		default:
			w.buf = make([]byte, 0, flushAt+4096)
		}
	default:
		w.a.dropped.Add(uint64(len(w.buf)))
		w.buf = w.buf[:0]
	}
}
