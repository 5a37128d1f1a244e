package loop

import (
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"gozer/gateway/telemetry"
)

// turnsProbe dispatches a real gnet loop's events as the server's handler
// does: the waker to its Loop, the probe's own connection to onData.
type turnsProbe struct {
	gnet.BuiltinEventEngine
	l      *Loop
	opened chan *Loop
	woken  chan struct{} // closed when the waker opened
	onData func()
}

func (p *turnsProbe) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if w, ok := c.Context().(*Waker); ok {
		w.OnOpen(c)
		close(p.woken)
		return nil, gnet.None
	}
	p.l = New(c.EventLoop(), -1, NewShared(&Snapshot{}, zerolog.Nop(), telemetry.NewAccessLog(nil), nil))
	p.opened <- p.l
	return nil, gnet.None
}

func (p *turnsProbe) OnTraffic(c gnet.Conn) gnet.Action {
	if w, ok := c.Context().(*Waker); ok {
		w.l.Enter()
		w.OnData()
		w.l.Leave()
		return gnet.None
	}
	_, _ = c.Discard(-1)
	p.l.Enter()
	p.onData()
	p.l.Leave()
	return gnet.None
}

func (p *turnsProbe) OnClose(c gnet.Conn, err error) gnet.Action {
	if w, ok := c.Context().(*Waker); ok {
		w.OnClose(err)
	}
	return gnet.None
}

// TestTurnLetsIOIn: a task that keeps queueing its own next turn does not keep
// the loop from its connections: bytes a peer sends meanwhile are read before
// the chain ends. (gnet's Execute from the loop runs the chain to its end
// first: that is what a pipelining client did to everyone else.)
func TestTurnLetsIOIn(t *testing.T) {
	p := &turnsProbe{opened: make(chan *Loop, 1), woken: make(chan struct{})}
	cli, ln := probeClient(t, p)
	peer := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			peer <- c
		}
	}()
	if _, err := cli.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	l := <-p.opened
	srv := <-peer
	defer srv.Close()

	// All below runs on the loop: results come back over channels.
	const chain = 200000
	type result struct{ turnsBeforeData, turns int }
	res := make(chan result, 1)
	var turns, atData int
	p.onData = func() {
		if atData == 0 {
			atData = turns
		}
	}
	var step taskFunc
	step = func() {
		turns++
		if turns == chain {
			res <- result{atData, turns}
			return
		}
		l.Turn(step)
	}
	started := make(chan struct{})
	l.Execute(func() {
		l.Turn(step) // the first: the waker is made, gnet opens it a little later
		close(started)
	})
	<-started
	// Wait until the chain runs on the waker (not Execute's fallback).
	select {
	case <-p.woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the waker did not open within 10 s")
	}
	if _, err := srv.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.turnsBeforeData == 0 {
			t.Fatalf("the peer's bytes were read only after all %d turns", r.turns)
		}
		t.Logf("the peer's bytes were read after %d of %d turns", r.turnsBeforeData, r.turns)
	case <-time.After(60 * time.Second):
		t.Fatal("the chain of turns did not end within 60 s")
	}
}
