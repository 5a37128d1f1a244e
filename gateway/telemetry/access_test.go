package telemetry

import (
	"bufio"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/internal/syncbuf"
)

// lockedBuf is an access-log sink (a WriteCloser) the log's writer goroutine
// writes while the test reads it.
type lockedBuf struct{ syncbuf.Buffer }

func (l *lockedBuf) Close() error { return nil }

func TestAccessLogDeliversEveryLineInOrder(t *testing.T) {
	sink := &lockedBuf{}
	a := NewAccessLog(sink)
	w := a.NewLoopWriter()
	const n = 5000 // several flushAt-sized buffers
	for i := 0; i < n; i++ {
		w.Logger.Log().Int("i", i).Str("path", "/some/path/that/takes/room").Send()
	}
	w.Flush()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(sink.String()))
	next := 0
	for sc.Scan() {
		var line struct {
			I    int    `json:"i"`
			Time string `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", next, err, sc.Text())
		}
		if line.I != next || line.Time == "" {
			t.Fatalf("line %d: got i=%d time=%q", next, line.I, line.Time)
		}
		next++
	}
	if next+int(a.Dropped()) == 0 || next != n && a.Dropped() == 0 {
		t.Fatalf("got %d of %d lines and no drops counted", next, n)
	}
}

func TestAccessLogOff(t *testing.T) {
	a := NewAccessLog(nil)
	w := a.NewLoopWriter()
	w.Logger.Log().Str("k", "v").Send()
	w.Flush()
	if len(w.buf) != 0 {
		t.Fatalf("access log off still buffered %d bytes", len(w.buf))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSink(t *testing.T) {
	for _, spec := range []string{"off", ""} {
		if s, err := OpenSink(spec); s != nil || err != nil {
			t.Errorf("OpenSink(%q) = %v, %v; want nil, nil", spec, s, err)
		}
	}
	path := t.TempDir() + "/access.log"
	s, err := OpenSink(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := OpenSink(t.TempDir() + "/no/such/dir/log"); err == nil {
		t.Error("OpenSink into a missing directory succeeded")
	}
}

// gatedSink is an access-log sink that takes nothing until open is closed.
type gatedSink struct{ gate }

func (g *gatedSink) Close() error { return nil }

// TestAccessLogStalledSinkDropsAndReports: a sink that takes nothing makes
// the loops' flushes drop their lines (never wait), the drop is counted, and
// ReportDrops warns once per dropReportEvery while drops go on, and not
// when none happened since its last warning.
func TestAccessLogStalledSinkDropsAndReports(t *testing.T) {
	sink := &gatedSink{gate{open: make(chan struct{})}}
	a := NewAccessLog(sink)
	defer func() {
		close(sink.open)
		_ = a.Close()
	}()
	w := a.NewLoopWriter()
	flood := func() {
		for range 200 { // 200 flushes: more than the writer's queue holds
			w.Logger.Log().Str("path", strings.Repeat("x", flushAt)).Send()
		}
	}
	flood()
	if a.Dropped() == 0 {
		t.Fatal("a stalled sink dropped nothing: the flushes must have waited or grown without bound")
	}
	var out strings.Builder
	log := zerolog.New(&out)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at    time.Duration
		flood bool
		warns int // warnings logged so far
	}{
		{0, false, 1},                               // drops since start: warn
		{time.Second, true, 1},                      // more, but within dropReportEvery
		{dropReportEvery + time.Second, false, 2},   // those, reported once the period is over
		{3*dropReportEvery + time.Second, false, 2}, // nothing new: quiet
	}
	for i, st := range steps {
		if st.flood {
			flood()
		}
		a.ReportDrops(t0.Add(st.at), log)
		if n := strings.Count(out.String(), "access log lines lost"); n != st.warns {
			t.Fatalf("step %d: %d warnings; want %d:\n%s", i, n, st.warns, out.String())
		}
	}
}

// failingSink is an access-log sink whose every write fails (a full disk, a
// closed pipe), taking n bytes first.
type failingSink struct{ n int }

func (f failingSink) Write(p []byte) (int, error) {
	return min(f.n, len(p)), errors.New("no space left on device")
}
func (failingSink) Close() error { return nil }

// TestAccessLogWriteErrorsCounted: what the sink fails to write is counted
// apart from what a slow sink drops (Failed, not Dropped), the warning names
// the error (and only while write errors are what it reports), and
// ReportDropsAtExit says a new loss without ReportDrops' wait (the exit
// path's last word), and nothing when there is none.
func TestAccessLogWriteErrorsCounted(t *testing.T) {
	a := NewAccessLog(failingSink{n: 10})
	defer a.Close()
	w := a.NewLoopWriter()
	lose := func() { // one line, written by the writer goroutine, failed
		t.Helper()
		before := a.Failed()
		w.Logger.Log().Str("path", "/x").Send()
		w.Flush()
		for deadline := time.Now().Add(5 * time.Second); a.Failed() == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the failed write was not counted within 5s")
			}
		}
	}
	lose()
	if n := len(`{"path":"/x"}`) - 10; a.Dropped() != 0 || a.Failed() < uint64(n) {
		t.Fatalf("Dropped %d, Failed %d; want 0 and at least the line's bytes less the 10 written (%d)", a.Dropped(), a.Failed(), n)
	}
	var out strings.Builder
	log := zerolog.New(&out)
	warnings := func() int { return strings.Count(out.String(), "access log lines lost") }
	a.ReportDrops(time.Now(), log)
	if warnings() != 1 || !strings.Contains(out.String(), `"last_error":"no space left on device"`) ||
		!strings.Contains(out.String(), `"slow_sink_bytes_total":0`) {
		t.Fatalf("after the first loss:\n%s", out.String())
	}
	a.ReportDropsAtExit(log) // nothing new
	lose()
	a.ReportDrops(time.Now(), log) // within dropReportEvery
	if warnings() != 1 {
		t.Fatalf("want no second warning yet:\n%s", out.String())
	}
	a.ReportDropsAtExit(log) // the new loss, without the wait
	if warnings() != 2 {
		t.Fatalf("want the exit's warning:\n%s", out.String())
	}
	// A loss that is only a slow sink's does not carry an old write error.
	a.dropped.Add(100)
	out.Reset()
	a.ReportDropsAtExit(log)
	if warnings() != 1 || strings.Contains(out.String(), "last_error") {
		t.Fatalf("a slow sink's loss after write errors:\n%s", out.String())
	}
}
