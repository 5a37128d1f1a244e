// Package test holds Gozer's end-to-end tests: the real gozer binary in front of real
// demo-origin processes, driven over loopback sockets by net/http, curl and raw TCP.
//
//	go test -race -count=1 ./test/...          # everything (about 7.5 minutes)
//	go test -race -count=1 -short ./test/...   # without the 1 GiB transfers
//
// TestMain builds gozer and demo-origin once, and under -race a second gozer with
// the race detector, which every test runs unless it called plainGozer (checkRaces
// fails a test whose gozer reported a data race); the backpressure tests run
// twice (raceAlso): plain with their memory bounds, then race-built without
// them; GOZER_BIN=/path/to/gozer tests a
// gozer binary built elsewhere instead (taken as a plain build).
package test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	// moduleRoot is the directory of go.mod (the tests run in test/).
	moduleRoot string
	// gozerBin and originBin are the binaries built once by TestMain;
	// gozerPlainBin is gozer without the race detector (plainGozer), the
	// same file as gozerBin when the tests run without -race.
	gozerBin, gozerPlainBin, originBin string
	// plainTests holds the names of the tests that called plainGozer.
	plainTests sync.Map
	// unmeasuredTests holds the names of raceAlso's race passes.
	unmeasuredTests sync.Map
	// gozerBuildErr is set when gozer does not build: every test that needs it fails
	// with this message, the others still run.
	gozerBuildErr error
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test setup:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	if gomod, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.HasPrefix(gomod, []byte("module gozer")) {
		return 0, fmt.Errorf("%s is not the gozer module root (run the tests from test/)", root)
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "gozer-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	originBin = filepath.Join(dir, "demo-origin")
	if err := goBuild(originBin, "./gateway/cmd/demo-origin"); err != nil {
		return 0, err
	}
	gozerBin = filepath.Join(dir, "gozer")
	gozerPlainBin = gozerBin
	if bin := os.Getenv("GOZER_BIN"); bin != "" {
		gozerBin, gozerPlainBin = bin, bin // test a binary built elsewhere
	} else if gozerBuildErr = goBuild(gozerBin, "./gateway/cmd/gozer"); gozerBuildErr == nil && raceBuild {
		// The gateway under test gets the race detector too (make test runs
		// -race): a data race the end-to-end traffic provokes in the process
		// fails the test that ran it (checkRaces). Tests that measure its
		// memory keep the plain build (plainGozer).
		gozerBin = filepath.Join(dir, "gozer-race")
		gozerBuildErr = goBuild(gozerBin, "./gateway/cmd/gozer", "-race")
	}
	if gozerBuildErr != nil {
		fmt.Fprintln(os.Stderr, "warning:", gozerBuildErr)
	}
	return m.Run(), nil
}

// goBuild builds pkg into out, with flags (e.g. -race) before the package.
func goBuild(out, pkg string, flags ...string) error {
	args := append([]string{"build", "-buildvcs=false", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// plainGozer marks t, and the subtests it runs, as a test that measures what
// the race detector distorts: the gozer processes it starts are built without
// it. Memory (its shadow memory would be most of the RSS measured) and the
// service a client gets under a flood (2-10x the CPU per connection). Call it
// before starting gozer.
func plainGozer(t *testing.T) { plainTests.Store(t.Name(), true) }

// raceAlso runs test as a memory test: on a plain gozer (plainGozer), its
// memory bounds measured. When this test binary is race-built, it runs test a
// second time on the race-built gozer, whose rss reports 0 (not measured: the
// detector's shadow memory would be most of it; the plain pass measured it).
// For the tests that drive the gateway's backpressure (a paused origin
// connection, a stalled tunnel, a window held shut): the hand-offs between
// goroutines they exercise get the race detector too. The passes are the
// subtests "plain" and "race".
func raceAlso(t *testing.T, test func(t *testing.T)) {
	t.Run("plain", func(t *testing.T) {
		plainGozer(t)
		test(t)
	})
	if raceBuild {
		t.Run("race", func(t *testing.T) {
			unmeasuredTests.Store(t.Name(), true)
			test(t)
		})
	}
}

// unmeasured reports whether t (or the test it is a subtest of) is a race
// pass of raceAlso.
func unmeasured(t testing.TB) bool { return marked(&unmeasuredTests, t) }

// gozerBinFor is the gozer binary t runs: gozerPlainBin for a test (or a
// subtest of one) that called plainGozer, gozerBin otherwise.
func gozerBinFor(t testing.TB) (bin string, race bool) {
	if marked(&plainTests, t) {
		return gozerPlainBin, false
	}
	return gozerBin, raceBuild && gozerBin != gozerPlainBin
}

// marked reports whether m holds t's name or that of a test t is a subtest of.
func marked(m *sync.Map, t testing.TB) bool {
	for name := t.Name(); ; {
		if _, ok := m.Load(name); ok {
			return true
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return false
		}
		name = name[:i]
	}
}

// checkRaces fails t when p, a gozer built with -race, reported a data race:
// the race detector prints "WARNING: DATA RACE" and both stacks, then lets the
// process go on (and exit 66 at the end).
func checkRaces(t testing.TB, p *process) {
	t.Helper()
	out := p.output()
	if i := strings.Index(out, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("the gozer process reported a data race:\n%s", out[i:min(len(out), i+8000)])
	}
}

// waitFor polls cond every 20 ms until it is true, and fails the test with what when
// it is still false after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(timeout, cond) {
		t.Fatalf("after %v still not true: %s", timeout, what)
	}
}

// eventually polls cond every 20 ms until it is true (true) or timeout passes (false).
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a process writes to while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail is the end of s, for failure messages.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// process is a child process whose output is captured.
type process struct {
	name   string
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done
	race   bool          // built with -race: its RSS is mostly the detector's (rss refuses)
	// unmeasured: a race pass of raceAlso (race-built), whose rss reports 0
	// instead of refusing.
	unmeasured bool
}

func startProcess(name, bin string, args ...string) (*process, error) {
	return startProcessTo(name, nil, bin, args...)
}

// startProcessTo is startProcess with the child's stdout and stderr both on
// out instead of captured, when out is not nil (output then says nothing).
func startProcessTo(name string, out *os.File, bin string, args ...string) (*process, error) {
	p := &process{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if out != nil {
		p.cmd.Stdout, p.cmd.Stderr = out, out
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is everything the process printed, stdout then stderr.
func (p *process) output() string {
	return "stdout:\n" + p.stdout.String() + "\nstderr:\n" + p.stderr.String()
}

// stop sends SIGTERM, waits up to grace, then kills. It is safe to call twice.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(terminate)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exitCode waits up to timeout for the process to exit and returns its exit code.
func (p *process) exitCode(timeout time.Duration) (int, bool) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return 0, false
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	if p.err != nil {
		return -1, true
	}
	return 0, true
}

// rss is the resident set size of the process in bytes, from /proc/PID/status.
func (p *process) rss() (int64, error) {
	if p.unmeasured {
		return 0, nil
	}
	if p.race {
		return 0, fmt.Errorf("%s is built with -race, whose shadow memory would be most of its RSS: call plainGozer(t) first", p.name)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kb); n == 1 {
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
}

// origin is a running demo-origin process.
type origin struct {
	*process
	Name string
	Addr string // 127.0.0.1:PORT
}

// startOrigin starts a demo-origin on a free loopback port; it is killed at cleanup.
func startOrigin(t testing.TB, name string) *origin {
	t.Helper()
	p, err := startProcess("demo-origin "+name, originBin, "-addr", "127.0.0.1:0", "-name", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(2 * time.Second) })
	o := &origin{process: p, Name: name}
	const banner = "demo-origin listening on "
	waitFor(t, 10*time.Second, "demo-origin "+name+" prints its address", func() bool {
		out := p.stdout.String()
		if i := strings.Index(out, banner); i >= 0 {
			if line, _, ok := strings.Cut(out[i+len(banner):], "\n"); ok {
				o.Addr = strings.TrimSpace(line)
				return true
			}
		}
		if p.exited() {
			t.Fatalf("demo-origin %s exited: %v\n%s", name, p.err, p.output())
		}
		return false
	})
	return o
}

func startOrigins(t testing.TB, names ...string) []*origin {
	t.Helper()
	out := make([]*origin, len(names))
	for i, n := range names {
		out[i] = startOrigin(t, n)
	}
	return out
}

// URL is http://ADDR/path on the origin itself (bypassing Gozer).
func (o *origin) URL(path string) string { return "http://" + o.Addr + path }

// freePort returns a loopback address nobody listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// freePorts returns n distinct free loopback addresses: each listener is
// held until all are chosen, so the kernel cannot hand out one port twice
// (two freePort calls in a row can get the same one).
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], out[i] = ln, ln.Addr().String()
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// closedPort returns a loopback address where nothing listens (connect is refused).
func closedPort(t testing.TB) string { return freePort(t) }
