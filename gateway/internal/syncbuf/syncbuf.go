// Package syncbuf is a bytes.Buffer that goroutines may write while another
// reads it: for tests that collect a log or a process's output.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent use by any goroutines. Its zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns a copy of what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
