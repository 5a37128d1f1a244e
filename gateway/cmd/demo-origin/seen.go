package main

import (
	"bytes"
	"net"
	"sync"
)

// seenSet records every X-Test-Id value that reached the origin. It is filled from two
// places: the handler (a request whose head the origin accepted) and the raw bytes read
// from each connection (so a smuggled request the origin would reject, or one hidden in
// a body, still counts as seen). Tests use it to prove a request never got through.
type seenSet struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seenSet) add(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	s.ids[id]++
	s.mu.Unlock()
}

func (s *seenSet) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// recordingListener wraps accepted connections so that their raw input is scanned.
type recordingListener struct {
	net.Listener
	seen *seenSet
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, seen: l.seen}, nil
}

// recordingConn scans what it reads, line by line, for "X-Test-Id:" lines.
type recordingConn struct {
	net.Conn
	seen *seenSet
	mu   sync.Mutex
	line []byte // the current unfinished line, capped
	raw  map[string]bool
}

const maxScanLine = 4 << 10

var testIDPrefix = []byte("x-test-id")

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.scan(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.appendLine(b)
			return
		}
		c.appendLine(b[:i])
		c.checkLine()
		c.line = c.line[:0]
		b = b[i+1:]
	}
}

func (c *recordingConn) appendLine(b []byte) {
	if room := maxScanLine - len(c.line); room > 0 {
		if len(b) > room {
			b = b[:room]
		}
		c.line = append(c.line, b...)
	}
}

// checkLine records the value of a line that looks like an X-Test-Id header, however
// mangled (spaces before the colon, folded, bare LF). A value is counted once per
// connection here; the handler counts each request it serves separately.
func (c *recordingConn) checkLine() {
	l := bytes.TrimSpace(c.line)
	if len(l) < len(testIDPrefix) || !bytes.EqualFold(l[:len(testIDPrefix)], testIDPrefix) {
		return
	}
	rest := bytes.TrimSpace(l[len(testIDPrefix):])
	if len(rest) == 0 || rest[0] != ':' {
		return
	}
	id := string(bytes.TrimSpace(rest[1:]))
	if id == "" {
		return
	}
	if c.raw == nil {
		c.raw = make(map[string]bool)
	}
	if !c.raw[id] {
		c.raw[id] = true
		c.seen.add("raw:" + id)
	}
}
