package loop

// Turns: work that waits for the loop's next round of I/O.
//
// Why not Execute: gnet v2.10 puts a task queued from its own loop in the
// urgent queue, and Polling empties that queue, new tasks included, before
// it polls again. A task that queues its own continuation (a pipelining
// client's next batch of requests) therefore keeps the loop from every other
// connection until it stops: 300,000 pipelined requests answered locally
// held another client of the loop for up to a second.
//
// A turn waits behind the I/O instead. The loop polls one end of a socket
// pair as a connection of its own (the Waker); a byte written to the other
// end makes the loop's next epoll_wait report it beside every other ready
// connection, so gnet serves the waiting connections' reads and the turns in
// one round. What a turn queues waits for the round after. It costs a
// write, a read and a poll per round that has turns, none when there are none.
//
// Until the waker is open (it is made on the first Turn, and gnet opens it
// a little later), or if it cannot be made (tried again a minute later),
// turns run through Execute as before: correct, only not fair.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Waker is the loop's end of the socket pair that wakes it for turns: a
// connection kind of its own, dispatched by the server's event handler. Its
// methods run on its loop's goroutine.
type Waker struct {
	l *Loop
	c gnet.Conn // the loop's end, once open
}

// turns is the Loop's side of its Waker.
type turns struct {
	state int     // turnsNone, turnsStarting, turnsOpen, turnsFailed
	retry int64   // when a failed waker is tried again (loop clock)
	w     *Waker  // while starting or open
	wfd   int     // the end written to, while starting or open
	armed bool    // a byte is on its way: no need for another
	wait  []Task  // for the next round
	run   []Task  // the round being run (wait's spare backing array)
	wake  [1]byte // what is written
}

const (
	turnsNone = iota
	turnsStarting
	turnsOpen
	turnsFailed
)

// Turn runs t on the loop after the loop's next round of I/O: every
// connection ready meanwhile is served before t or beside it, none waits
// for t's work to end. Loop goroutine, inside a callback.
func (l *Loop) Turn(t Task) {
	ts := &l.turns
	if ts.state == turnsNone || ts.state == turnsFailed && l.Now() >= ts.retry {
		l.startWaker()
	}
	if ts.state != turnsOpen {
		l.Execute(t.Run)
		return
	}
	ts.wait = append(ts.wait, t)
	if ts.armed {
		return
	}
	// One byte at most is ever unread (the waker reads all each round), so
	// the write cannot find the socket full.
	if _, err := unix.Write(ts.wfd, ts.wake[:]); err != nil {
		l.Shared.Log.Error().Err(err).Msg("turns: cannot wake the loop; pipelined requests run unfairly for a minute")
		l.stopTurns()
		return
	}
	ts.armed = true
}

// startWaker makes the socket pair and has gnet poll one end on this loop.
// The Waker's OnOpen comes later, in a callback of its own.
func (l *Loop) startWaker() {
	ts := &l.turns
	ts.state, ts.retry = turnsFailed, l.Now()+wakerRetry
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.Shared.Log.Error().Err(err).Msg("turns: no socket pair; pipelined requests run unfairly for a minute")
		return
	}
	f := os.NewFile(uintptr(fds[0]), "gozer-waker")
	nc, err := net.FileConn(f) // a dup: f's own fd closes now
	_ = f.Close()
	if err == nil {
		w := &Waker{l: l}
		// gnet dups nc's fd for itself and closes nc once it is registered,
		// in a goroutine of its own: a failure there comes on the channel.
		var ch <-chan gnet.RegisteredResult
		if ch, err = l.EL.Enroll(gnet.NewContext(context.Background(), w), nc); err == nil {
			ts.state, ts.w, ts.wfd = turnsStarting, w, fds[1]
			go w.enrolled(ch)
			return
		}
		_ = nc.Close()
	}
	_ = unix.Close(fds[1])
	l.Shared.Log.Error().Err(fmt.Errorf("turns: enroll the waker: %w", err)).Msg("pipelined requests run unfairly for a minute")
}

// wakerRetry is how long after a failure a waker is tried again (ns).
const wakerRetry = int64(time.Minute)

// enrolled waits for gnet's word on the waker's enrollment; a failure gives
// it up on its loop. Its own goroutine.
func (w *Waker) enrolled(ch <-chan gnet.RegisteredResult) {
	r, ok := <-ch
	if ok && r.Err == nil {
		return
	}
	err := r.Err
	if err == nil {
		err = errors.New("gnet gave no result")
	}
	w.l.Execute(func() {
		if w.l.turns.w == w {
			w.l.Shared.Log.Error().Err(fmt.Errorf("turns: enroll the waker: %w", err)).Msg("pipelined requests run unfairly for a minute")
			w.l.stopTurns()
		}
	})
}

// stopTurns gives up on the waker: what waits runs through Execute, and so
// will every later turn until the waker is tried again (wakerRetry).
func (l *Loop) stopTurns() {
	ts := &l.turns
	if ts.state == turnsStarting || ts.state == turnsOpen {
		_ = unix.Close(ts.wfd)
	}
	ts.state, ts.w, ts.wfd, ts.armed = turnsFailed, nil, -1, false
	ts.retry = l.Now() + wakerRetry
	for i, t := range ts.wait {
		ts.wait[i] = nil
		l.Execute(t.Run)
	}
	ts.wait = ts.wait[:0]
}

// OnOpen runs when gnet opened the waker's connection on its loop.
func (w *Waker) OnOpen(c gnet.Conn) {
	ts := &w.l.turns
	if ts.w != w {
		_ = w.l.EL.Close(c) // given up on meanwhile
		return
	}
	w.c = c
	ts.state = turnsOpen
}

// Loop is the loop the waker wakes.
func (w *Waker) Loop() *Loop { return w.l }

// OnData runs the turns queued before this round; what they queue waits for
// the next one.
func (w *Waker) OnData() {
	_, _ = w.c.Discard(-1)
	ts := &w.l.turns
	if ts.w != w {
		return
	}
	ts.armed = false
	ts.run, ts.wait = ts.wait, ts.run[:0]
	for i, t := range ts.run {
		ts.run[i] = nil
		t.Run()
	}
	ts.run = ts.run[:0]
}

// OnClose runs when gnet closed the waker (the engine stops).
func (w *Waker) OnClose(error) {
	if w.l.turns.w == w {
		w.l.stopTurns()
	}
}
