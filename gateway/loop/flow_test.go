package loop

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// epollProbe records what EpollFD finds from inside a real gnet loop.
type epollProbe struct {
	gnet.BuiltinEventEngine
	got  chan error
	read chan string // what OnTraffic reads after the pause and resume
}

func (p *epollProbe) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	epfd, err := EpollFD(c)
	if err == nil {
		var link string
		link, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(epfd))
		if err == nil && link != "anon_inode:[eventpoll]" {
			err = &net.AddrError{Err: "fd is " + link + ", not an epoll instance"}
		}
		if err == nil {
			// Pausing and resuming must be accepted by the kernel for a live connection.
			if err = setInterest(epfd, c, false); err == nil {
				err = setInterest(epfd, c, true)
			}
		}
	}
	p.got <- err
	return nil, gnet.None
}

func (p *epollProbe) OnTraffic(c gnet.Conn) gnet.Action {
	b, _ := c.Next(-1)
	select {
	case p.read <- string(b):
	default:
	}
	return gnet.None
}

// probeClient starts a one-loop gnet client with handler h and a loopback
// listener, both closed at the end of the test: the tests that check Gozer's
// reads and writes of gnet internals run them inside a real loop.
func probeClient(t *testing.T, h gnet.EventHandler) (*gnet.Client, net.Listener) {
	t.Helper()
	cli, err := gnet.NewClient(h, gnet.WithNumEventLoop(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Stop() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return cli, ln
}

// TestLoopEpollFD guards a place Gozer reaches into gnet's internals: if a gnet
// upgrade moves the loop's epoll fd, backpressure would silently stop working.
func TestLoopEpollFD(t *testing.T) {
	p := &epollProbe{got: make(chan error, 1), read: make(chan string, 1)}
	cli, ln := probeClient(t, p)
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			_, _ = c.Write([]byte("ping"))
			time.Sleep(time.Second)
		}
	}()
	if _, err := cli.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.got:
		if err != nil {
			t.Fatalf("EpollFD: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gnet never opened the connection")
	}
	// After the pause and resume, gnet's poller must still find the connection
	// from the event's data (the fd) and read it again.
	select {
	case got := <-p.read:
		if got != "ping" {
			t.Fatalf("read %q after resume, want %q", got, "ping")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no read after resume: the epoll event data is not what gnet registered, or reads stayed off")
	}
}

// TestWatcherWakesLoopWork checks the watcher fires once per arm for a writable fd,
// on the connection's loop.
func TestWatcherWakesLoopWork(t *testing.T) {
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { w.Run(); close(done) }()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	l := &Loop{EL: &inlineLoop{}}
	fired := make(chan struct{}, 4)
	if err := w.watch(fds[0], l, func() { fired <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("writable fd never reported")
	}
	// Re-arming must work (MOD after the one-shot fired), and unwatch must not fail.
	if err := w.watch(fds[0], l, func() { fired <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("re-armed watch never reported")
	}
	w.unwatch(fds[0])
	w.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher goroutine did not stop")
	}
	w.Release()
}
