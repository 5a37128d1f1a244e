// Package telemetry owns Gozer's logs: the process log (zerolog, JSON, non-blocking)
// and the access log (one JSON line per request, buffered per event loop); the
// counters of requests by origin and status cause (CauseCounters, for the admin
// API); and the request metrics behind GET /metrics and the live dashboard
// (Metrics: per-loop shards, summed when read; Histogram and its quantiles;
// LatencyWindow, the dashboard's p50/p99 over the last seconds).
package telemetry

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
}

// NewProcessLogger returns the process logger. Writes go through a queue
// drained by its own goroutine (lineWriter), so an event loop that logs an
// error never blocks on a slow stderr; when the queue overflows, lines are
// dropped and the drop is counted in a later line. The logger is safe for use
// from any goroutine; the returned func writes what is queued and stops,
// waiting at most CloseWait for out to take it (a stalled stderr loses the
// last lines rather than hold up the exit), and reports whether all of it
// was written.
func NewProcessLogger(level string, out io.Writer) (zerolog.Logger, func() bool, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		return zerolog.Nop(), nil, fmt.Errorf("log level %q: %w", level, err)
	}
	lw := newLineWriter(out)
	l := zerolog.New(lw).Level(lvl).With().Timestamp().Logger()
	return l, func() bool { return CloseWithin(lw, CloseWait) == nil }, nil
}

// OpenSink opens where the access log goes: "stdout", "stderr", "off" (nil, nil) or a file path.
func OpenSink(spec string) (io.WriteCloser, error) {
	switch spec {
	case "off", "":
		return nil, nil
	case "stdout":
		return nopCloser{os.Stdout}, nil
	case "stderr":
		return nopCloser{os.Stderr}, nil
	}
	f, err := os.OpenFile(spec, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
