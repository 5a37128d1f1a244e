package telemetry

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestSampledLogsOncePerReasonAndInterval(t *testing.T) {
	var buf bytes.Buffer
	s := NewSampled(zerolog.New(&buf), time.Hour)
	for range 100 {
		s.Warn("slow body").Str("client", "192.0.2.1").Msg("closed")
	}
	s.Warn("slow reader").Msg("closed")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per reason:\n%s", len(lines), buf.String())
	}
	// The next line after the interval counts the unlogged events.
	s.reasons.Range(func(_, v any) bool { v.(*sampledReason).next.Store(0); return true })
	buf.Reset()
	s.Warn("slow body").Msg("closed")
	if !strings.Contains(buf.String(), `"unlogged_since_last":99`) {
		t.Fatalf("line after the interval = %s, want the 99 unlogged events counted", buf.String())
	}
}
