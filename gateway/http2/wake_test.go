package http2

import (
	"bytes"
	"context"
	"testing"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/net/http2"
)

// openStreams puts n bare streams (no exchange) on c, as request would.
func openStreams(c *Conn, n int) []*stream {
	var sts []*stream
	for i := 0; i < n; i++ {
		id := c.lastID + 2
		if c.lastID == 0 {
			id = 1
		}
		c.lastID = id
		st := c.lp.newStream(c, id)
		c.streams[id] = st
		c.open++
		sts = append(sts, st)
	}
	return sts
}

// TestWakeWaiters: only the streams that asked (WaitWritable) are visited;
// one whose DATA still waits over the allowance stays listed, the others
// are woken and leave the list, and a stream that ends leaves it too.
func TestWakeWaiters(t *testing.T) {
	c, _, l := newTestConn(t)
	l.Enter()
	defer l.Leave()
	c.state = stOpen
	sts := openStreams(c, 50)
	big := make([]byte, 1<<20) // over any allowance: stays waiting
	sts[3].pend = append(sts[3].pend, big...)
	for _, i := range []int{3, 7, 11, 40} {
		sts[i].WaitWritable()
		sts[i].WaitWritable() // twice: listed once
	}
	if len(c.waiters) != 4 {
		t.Fatalf("%d waiters listed, want 4", len(c.waiters))
	}
	c.forget(sts[11])
	if len(c.waiters) != 3 || sts[11].waiting {
		t.Fatalf("an ended stream stays listed: %d waiters", len(c.waiters))
	}
	c.wakeWaiters()
	if len(c.waiters) != 1 || c.waiters[0] != sts[3] || !sts[3].waiting {
		t.Fatalf("after the wake-up %d waiters, want only the stream with 1 MiB waiting", len(c.waiters))
	}
	if sts[7].waiting || sts[40].waiting || sts[7].sendAt != 0 {
		t.Fatal("a stream with nothing waiting was not woken")
	}
}

// TestArm: a stream's timer that comes sooner moves the connection's at
// once (no scan); one that goes away leaves it, and when it fires early
// nothing is due and the connection's timer is set to what is.
func TestArm(t *testing.T) {
	c, _, l := newTestConn(t)
	l.Enter()
	defer l.Leave()
	c.state = stOpen
	sts := openStreams(c, 3)
	now := l.Now()
	sts[0].sendAt = now + 5e9
	c.arm(sts[0])
	if c.deadline != now+5e9 {
		t.Fatalf("deadline %d, want the stream's %d", c.deadline, now+5e9)
	}
	sts[1].sendAt = now + 9e9
	c.arm(sts[1])
	if c.deadline != now+5e9 {
		t.Fatal("a later stream timer moved the connection's")
	}
	sts[0].sendAt = 0
	c.arm(sts[0])
	c.onTimer(now + 5e9) // the stale deadline fires: nothing due
	if c.state != stOpen || len(c.streams) != 3 {
		t.Fatal("a stale deadline ended something")
	}
	if c.deadline != now+9e9 {
		t.Fatalf("after the stale fire, deadline %d, want %d", c.deadline, now+9e9)
	}
}

// TestFlushBatch: responses that several streams flush in the callbacks of
// one batch of events (an origin's each) leave together once the batch
// ended: one write to the socket, every stream's frames in it, in order.
func TestFlushBatch(t *testing.T) {
	var tasks []gnet.Runnable
	c, fc, l := newTestConnTasks(t, &tasks)
	for _, r := range tasks { // the SETTINGS of start
		_ = r.Run(context.Background())
	}
	tasks = nil
	l.Enter()
	c.state = stOpen
	sts := openStreams(c, 3)
	l.Leave()
	fc.out, fc.writes = nil, 0
	for i, st := range sts { // three origins' callbacks
		l.Enter()
		st.WriteBody([]byte{byte('a' + i)})
		st.EndBody(nil)
		st.Flush() // (false: a bare stream has no exchange)
		l.Leave()
	}
	if fc.writes != 0 || len(tasks) != 1 {
		t.Fatalf("before the batch ended: %d writes, %d tasks queued; want 0 and 1", fc.writes, len(tasks))
	}
	_ = tasks[0].Run(context.Background())
	if fc.writes != 1 {
		t.Fatalf("%d writes for the batch, want 1", fc.writes)
	}
	var got []byte
	fr := http2.NewFramer(nil, bytes.NewReader(fc.out))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if d, ok := f.(*http2.DataFrame); ok {
			got = append(got, d.Data()...)
		}
	}
	if string(got) != "abc" {
		t.Fatalf("DATA of the batch %q, want abc", got)
	}
}
