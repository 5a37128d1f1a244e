package loop

import "testing"

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
