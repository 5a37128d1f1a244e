package telemetry

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

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
