package telemetry

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// CloseWait is how long an exit path waits for a log's sink to take what is
// queued (the access log's buffers, the process log's lines) before it gives
// up on them: a sink that stopped reading (a log collector stalled on stdout,
// a full pipe) must not keep the process from exiting, for its supervisor
// to restart it, or SIGTERM from meaning a stop within a few seconds of the
// drain timeout (the README: a supervisor grace of at least drain_timeout + 5 s).
const CloseWait = 2 * time.Second

// ErrCloseTimeout is what CloseWithin returns when the close did not finish in time.
var ErrCloseTimeout = errors.New("log sink did not take what was queued")

// CloseWithin closes c, waiting at most wait. When c has not closed by then,
// it returns ErrCloseTimeout (wrapped with the wait) and the close goes on
// in the background: the caller is on its way out, and what c still holds
// is lost with the process. Safe from any goroutine; c's Close runs on a
// goroutine of its own.
func CloseWithin(c io.Closer, wait time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("close after %v: %w", wait, ErrCloseTimeout)
	}
}
