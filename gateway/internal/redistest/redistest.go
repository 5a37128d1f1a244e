// Package redistest runs a real, throwaway redis-server for tests: on a free
// loopback port, without persistence, in a temporary directory, killed when
// the test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gozer/gateway/internal/syncbuf"
)

// startTimeout bounds how long a fresh server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process.
//
// Concurrency: Addr may be read from any goroutine; Kill and Restart belong
// to the test's goroutine.
type Server struct {
	// Addr is "127.0.0.1:port"; it stays the same across Restart.
	Addr string

	t      testing.TB
	dir    string
	mu     sync.Mutex
	proc   *os.Process // nil when stopped
	exited chan error  // receives proc's exit, once
}

// Start starts a redis-server from PATH and waits until it answers PING. The
// server is killed at the test's cleanup. Without redis-server on PATH the
// test fails: a test that silently skips would hide that the cluster code was
// never exercised.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redistest: redis-server is not on PATH; `make test` installs it (apt-get install redis-server)")
	}
	s := &Server{t: t, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	// The port is free when picked but may be taken before redis binds it:
	// then redis exits at once, and another port is tried.
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// Kill stops the server at once (SIGKILL, as a crash would) and waits for it
// to exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	proc, exited := s.proc, s.exited
	s.proc, s.exited = nil, nil
	s.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Kill()
	<-exited
}

// Restart starts a new, empty server on the same address (a Redis that came
// back after an outage, with its data and script cache lost).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	// Right after a kill the port may linger briefly; retry until the deadline.
	deadline := time.Now().Add(startTimeout)
	for {
		if err = s.start(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	out := &syncbuf.Buffer{}
	cmd := exec.Command("redis-server",
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr) == nil {
			s.mu.Lock()
			s.proc, s.exited = cmd.Process, exited
			s.mu.Unlock()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server on %s exited (%v): %s", s.Addr, err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %s", s.Addr, startTimeout, out.String())
		}
	}
}

// ping sends PING over a raw connection and expects +PONG: no client library,
// so the helper does not depend on the code under test.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
