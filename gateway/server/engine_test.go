package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"gozer/gateway/loop"
)

// noDelayProbe reports TCP_NODELAY of each socket the loops open.
type noDelayProbe struct {
	gnet.BuiltinEventEngine
	got chan int
}

func (p *noDelayProbe) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	v, err := unix.GetsockoptInt(c.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	if err != nil {
		v = -1
	}
	p.got <- v
	return nil, gnet.Close
}

// TestEngineNoDelay: a client connection accepted and enrolled as acceptLoop
// does (same listener config, same engine options) has TCP_NODELAY on,
// although the options tell gnet not to set it (Go did, at accept).
func TestEngineNoDelay(t *testing.T) {
	p := &noDelayProbe{got: make(chan int, 1)}
	cli, err := gnet.NewClient(p, engineOptions(1, gnetLogger{zerolog.Nop()})...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Stop() }()
	lc := net.ListenConfig{KeepAlive: -1} // as listen
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.EnrollContext(c, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-p.got:
		if v != 1 {
			t.Errorf("TCP_NODELAY = %d on an enrolled client socket, want 1", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection never opened on a loop")
	}
}

// TestLoopEngineNoDelay: a client connection a loop accepts with the options of
// server.accept_on_loops has TCP_NODELAY on: gnet sets it on the listening
// socket only, and the kernel copies it to the accepted one.
func TestLoopEngineNoDelay(t *testing.T) {
	p, addr, done := startProbeEngine(t)
	client := dialLoop(t, addr)
	defer client.Close()
	select {
	case v := <-p.got:
		if v != 1 {
			t.Errorf("TCP_NODELAY = %d on a socket a loop accepted, want 1", v)
		}
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("the connection never opened on a loop")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Stop starts the shutdown; done says when it is over
	_ = (<-p.eng).Stop(ctx)
	<-done
}

// startProbeEngine runs server.accept_on_loops's engine with one loop and a
// bootProbe on a free loopback port; done says when gnet.Run returned.
func startProbeEngine(t *testing.T) (*bootProbe, string, chan error) {
	t.Helper()
	p := &bootProbe{noDelayProbe: noDelayProbe{got: make(chan int, 1)}, eng: make(chan gnet.Engine, 1)}
	addr, err := listenAddr("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gnet.Run(p, "tcp://"+addr, loopEngineOptions(1, gnetLogger{zerolog.Nop()})...) }()
	return p, addr, done
}

// dialLoop connects to addr once the loop, which binds in gnet.Run's
// goroutine, listens (a condition polled for up to a second).
func dialLoop(t *testing.T, addr string) net.Conn {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if i == 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bootProbe is a noDelayProbe that keeps its engine.
type bootProbe struct {
	noDelayProbe
	eng chan gnet.Engine
}

func (p *bootProbe) OnBoot(e gnet.Engine) gnet.Action { p.eng <- e; return gnet.None }

// TestStopLoopAcceptingDeadline: drain stops the loops' listeners on their
// own goroutines; a loop stuck in a callback must not hold Shutdown past its
// deadline (stopLoopAccepting returns when ctx ends).
func TestStopLoopAcceptingDeadline(t *testing.T) {
	p, addr, done := startProbeEngine(t)
	var eng gnet.Engine
	select {
	case eng = <-p.eng:
	case err := <-done:
		t.Fatal(err)
	}
	unblock := make(chan struct{})
	defer func() {
		close(unblock)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = eng.Stop(ctx)
		<-done
	}()
	// A connection opened on the loop: it runs, gnet set it up (ListeningOf
	// reads what gnet wrote before the loop started).
	client := dialLoop(t, addr)
	defer client.Close()
	<-p.got
	lns, err := loop.ListeningOf(eng)
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan struct{})
	if err := lns[0].EL.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		close(busy)
		<-unblock // the loop is stuck until the test ends
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	<-busy
	s := &Server{loopEng: &loopEngine{eng: eng}, log: zerolog.Nop()}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	returned := make(chan struct{})
	go func() { s.stopLoopAccepting(ctx); close(returned) }()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("stopLoopAccepting waited for a stuck loop past its deadline")
	}
}
