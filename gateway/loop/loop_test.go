package loop

import (
	"strings"
	"testing"
)

func TestRequestIDsAreUniqueAndFixedWidth(t *testing.T) {
	l := &Loop{}
	l.SetIDPrefix([16]byte([]byte("0123456789abcdef")))
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := string(l.NextRequestID(nil))
		if len(id) != 32 || seen[id] {
			t.Fatalf("id %q: len %d, duplicate %v", id, len(id), seen[id])
		}
		seen[id] = true
	}
}

// TestCallbacksNest: only the outermost callback's end recycles (gnet calls
// OnClose from inside a failed Write, on the same goroutine).
func TestCallbacksNest(t *testing.T) {
	l := &Loop{}
	ends := 0
	l.OnCallbackEnd(func() { ends++ })
	l.Enter()
	l.Enter() // a nested callback
	l.Leave()
	if ends != 0 {
		t.Fatalf("a nested callback's end ran the end hooks")
	}
	l.Leave()
	if ends != 1 {
		t.Fatalf("the outer callback's end ran the hooks %d times, want 1", ends)
	}
}

// taskFunc is a func as a Task.
type taskFunc func()

func (f taskFunc) Run() { f() }

// TestLaterLastRunsAfterLater: a LaterLast task runs once no Later task waits,
// those queued after it included, and what it queues runs before the next
// LaterLast task; all before the end hooks.
func TestLaterLastRunsAfterLater(t *testing.T) {
	l := &Loop{}
	var got []string
	l.OnCallbackEnd(func() { got = append(got, "end") })
	l.Enter()
	l.LaterLast(taskFunc(func() {
		got = append(got, "last1")
		l.Later(taskFunc(func() { got = append(got, "later-of-last1") }))
	}))
	l.LaterLast(taskFunc(func() { got = append(got, "last2") }))
	l.Later(taskFunc(func() {
		got = append(got, "later1")
		l.Later(taskFunc(func() { got = append(got, "later2") }))
	}))
	l.Leave()
	want := "later1 later2 last1 later-of-last1 last2 end"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("ran %q, want %q", s, want)
	}
	// The next callback starts with nothing queued.
	got = got[:0]
	l.Enter()
	l.Leave()
	if s := strings.Join(got, " "); s != "end" {
		t.Fatalf("the next callback ran %q, want only its end", s)
	}
}
