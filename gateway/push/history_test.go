package push

import (
	"bytes"
	"testing"
)

// TestHistoryEventIDs checks the SSE event ids of a client id's devices: one push
// call (one seq) is one event whatever the number of devices and however calls
// interleave; seq 0 (a Push from outside the registry) is always a new event.
func TestHistoryEventIDs(t *testing.T) {
	s := NewHistory(16, 64<<10)
	idOf := func(enc []byte) string {
		line, _, _ := bytes.Cut(enc, []byte("\n"))
		return string(line)
	}
	a1 := s.Event("dev", []byte("a"), 1) // call 1, first device
	b1 := s.Event("dev", []byte("b"), 2) // call 2 interleaves
	a2 := s.Event("dev", []byte("a"), 1) // call 1, second device
	if idOf(a1) != idOf(a2) || idOf(a1) == idOf(b1) {
		t.Fatalf("ids: call 1 %q and %q, call 2 %q", idOf(a1), idOf(a2), idOf(b1))
	}
	x := s.Event("dev", []byte(""), 0)
	y := s.Event("dev", []byte(""), 0)
	if idOf(x) == idOf(y) {
		t.Fatalf("two pushes with seq 0 share id %q", idOf(x))
	}
	// The replay after the first event holds every other event once.
	out, complete, err := s.Attach(nil, "dev", parseID(t, idOf(a1)), true, func() error { return nil })
	if err != nil || !complete {
		t.Fatalf("attach: complete %v, err %v", complete, err)
	}
	if n := bytes.Count(out, []byte("id: ")); n != 3 {
		t.Fatalf("replay has %d events, want 3 (b, and the two seq-0 pushes):\n%s", n, out)
	}
}

func parseID(t *testing.T, line string) uint64 {
	t.Helper()
	var id uint64
	for _, c := range []byte(line[len("id: "):]) {
		id = id*10 + uint64(c-'0')
	}
	return id
}
