package telemetry

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gozer/gateway/internal/syncbuf"
)

// gate blocks every Write until open is closed: a stuck stderr.
type gate struct {
	open chan struct{}
	out  syncbuf.Buffer
}

func (g *gate) Write(p []byte) (int, error) { <-g.open; return g.out.Write(p) }

func TestLineWriterDeliversPromptlyInOrder(t *testing.T) {
	var out syncbuf.Buffer
	w := newLineWriter(&out)
	buf := []byte("line 0\n")
	for i := range 100 {
		buf = fmt.Appendf(buf[:0], "line %d\n", i)
		if n, err := w.Write(buf); n != len(buf) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		buf[0] = 'X' // the caller's buffer is reused: the writer kept a copy
	}
	// No poll interval: the line is out as soon as the goroutine runs, before
	// any Close flushes it.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), "line 99\n") {
		if time.Now().After(deadline) {
			t.Fatal("the last line was not written within 2 s of its Write")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if got := out.String(); got != want.String() {
		t.Fatalf("got %q", got)
	}
}

func TestLineWriterDropsAndCountsWhenStuck(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	w := newLineWriter(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// One line taken by the stuck writer, logQueue queued, the rest dropped.
		for range logQueue + 10 {
			_, _ = w.Write([]byte("x\n"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked behind a stuck output")
	}
	close(g.open)
	_ = w.Close()
	got := g.out.String()
	if !strings.Contains(got, `"process log dropped `) {
		t.Fatalf("no drop report in %d bytes", len(got))
	}
	if n := strings.Count(got, "x\n"); n < logQueue || n >= logQueue+10 {
		t.Fatalf("%d lines written, want between %d and %d", n, logQueue, logQueue+9)
	}
}

func TestLineWriterAfterClose(t *testing.T) {
	var out syncbuf.Buffer
	w := newLineWriter(&out)
	_, _ = w.Write([]byte("before\n"))
	_ = w.Close()
	_ = w.Close() // twice is harmless
	if n, err := w.Write([]byte("after\n")); n != 6 || err != nil {
		t.Fatalf("Write after Close = %d, %v", n, err)
	}
	if got := out.String(); got != "before\n" {
		t.Fatalf("got %q", got)
	}
}
