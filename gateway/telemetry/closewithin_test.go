package telemetry

import (
	"errors"
	"testing"
	"time"
)

// closer's Close returns err, once release is closed when it is not nil.
type closer struct {
	release chan struct{}
	err     error
}

func (c closer) Close() error {
	if c.release != nil {
		<-c.release
	}
	return c.err
}

func TestCloseWithin(t *testing.T) {
	failed := errors.New("disk gone")
	for _, tc := range []struct {
		name string
		c    closer
		want error
	}{
		{"closes at once", closer{}, nil},
		{"close fails", closer{err: failed}, failed},
		{"stalled sink", closer{release: make(chan struct{})}, ErrCloseTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.release != nil {
				defer close(tc.c.release)
			}
			start := time.Now()
			err := CloseWithin(tc.c, 50*time.Millisecond)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("CloseWithin = %v; want %v", err, tc.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("CloseWithin took %v with a 50ms wait", took)
			}
		})
	}
}

// TestProcessLogCloseStalledOutput: the process logger's close func returns
// (reporting the loss) when its output stopped taking lines.
func TestProcessLogCloseStalledOutput(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	defer close(g.open)
	log, closeLog, err := NewProcessLogger("info", g)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("stuck behind the gate")
	done := make(chan bool, 1)
	go func() { done <- closeLog() }()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("close reported every line written while the output took none")
		}
	case <-time.After(CloseWait + 10*time.Second):
		t.Fatalf("close still waiting %v after CloseWait (%v)", 10*time.Second, CloseWait)
	}
}
