package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// echoEngine is a gnet engine that echoes, keeps its Engine and counts the
// connections each loop opened.
type echoEngine struct {
	gnet.BuiltinEventEngine
	eng    chan gnet.Engine
	mu     sync.Mutex
	opened map[gnet.EventLoop]int
}

func (e *echoEngine) OnBoot(eng gnet.Engine) gnet.Action { e.eng <- eng; return gnet.None }

func (e *echoEngine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	e.mu.Lock()
	e.opened[c.EventLoop()]++
	e.mu.Unlock()
	return nil, gnet.None
}

func (e *echoEngine) OnTraffic(c gnet.Conn) gnet.Action {
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	return gnet.None
}

// echo writes a line on c and reads it back.
func echo(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 4)
	_, err := c.Read(b)
	return err
}

// TestLoopListeners guards the place drain reaches into gnet's engine
// (ListeningOf), and checks what drain relies on: with SO_REUSEPORT each of 2
// loops has a listening socket of its own and both get connections; stopping
// every loop's listeners on its goroutine refuses new connections
// (ECONNREFUSED) while the loops go on serving the open ones.
func TestLoopListeners(t *testing.T) {
	h := &echoEngine{eng: make(chan gnet.Engine, 1), opened: map[gnet.EventLoop]int{}}
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(h, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithNumEventLoop(2), gnet.WithReusePort(true), gnet.WithReuseAddr(true))
	}()
	var eng gnet.Engine
	select {
	case eng = <-h.eng:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = eng.Stop(ctx)
		<-done
	}()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Both loops get connections: the kernel hashes each connection's ports
	// over the two sockets.
	for i := 0; i < 64; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if err := echo(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	h.mu.Lock()
	per := len(h.opened)
	h.mu.Unlock()
	if per != 2 {
		t.Errorf("64 connections reached %d loop(s), want both", per)
	}

	lns, err := ListeningOf(eng)
	if err != nil {
		t.Fatal(err)
	}
	if len(lns) != 2 {
		t.Fatalf("ListeningOf: %d loops, want 2", len(lns))
	}
	for i, ln := range lns {
		if len(ln.FDs()) != 1 {
			t.Fatalf("loop %d: %d listeners, want 1", i, len(ln.FDs()))
		}
		if v, err := unix.GetsockoptInt(ln.FDs()[0], unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
			t.Fatalf("loop %d: fd %d is not a listening socket (SO_ACCEPTCONN %d, %v)", i, ln.FDs()[0], v, err)
		}
	}
	if !StopListening(t.Context(), lns, func(err error) { t.Error(err) }) {
		t.Fatal("the loops did not stop their listeners")
	}
	for i := 0; i < 8; i++ { // any of the sockets would have taken one of 8
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			t.Fatal("a new connection was accepted after every listener stopped")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("new connection after the listeners stopped: %v, want connection refused", err)
		}
	}
	for i, c := range conns {
		if err := echo(c); err != nil {
			t.Fatalf("open connection %d after the listeners stopped: %v", i, err)
		}
	}
}

// TestListeningStopNotPolled: Stop shuts down only a socket it took out of
// the loop's epoll instance. A descriptor the instance does not hold (ENOENT:
// the number may name another socket now) is reported and left alone; a
// second Stop does nothing.
func TestListeningStopNotPolled(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	listening := func() bool {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		return err == nil && v == 1
	}

	ln := &Listening{epfd: epfd, fds: []int{fd}}
	if err := ln.Stop(); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Stop of a socket the loop does not poll: %v, want ENOENT", err)
	}
	if !listening() {
		t.Fatal("Stop shut down a socket it did not take out of epoll")
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("the socket left alone refuses connections: %v", err)
	}
	c.Close()

	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		t.Fatal(err)
	}
	ln = &Listening{epfd: epfd, fds: []int{fd}}
	if err := ln.Stop(); err != nil {
		t.Fatal(err)
	}
	if listening() {
		t.Fatal("a stopped listener still listens")
	}
	if err := ln.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}
