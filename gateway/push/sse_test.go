package push

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// sseEvent is what an EventSource client dispatches.
type sseEvent struct {
	id, event, data string
}

// parseSSE follows the WHATWG "interpret an event stream" steps (without the
// BOM and retry), to check what a real client would see.
func parseSSE(stream string) (events []sseEvent, lastID string) {
	var data strings.Builder
	var event string
	haveData := false
	s := strings.ReplaceAll(strings.ReplaceAll(stream, "\r\n", "\n"), "\r", "\n")
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasSuffix(line, "\n") {
			break // incomplete line: not processed
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if haveData {
				events = append(events, sseEvent{lastID, event, strings.TrimSuffix(data.String(), "\n")})
			}
			data.Reset()
			event, haveData = "", false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data.WriteString(value + "\n")
			haveData = true
		case "event":
			event = value
		case "id":
			lastID = value
		}
	}
	return events, lastID
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name  string
		id    uint64
		event string
		data  string
		wire  string
		want  sseEvent
	}{
		{"simple", 1, "", "hello", "id: 1\ndata: hello\n\n", sseEvent{"1", "", "hello"}},
		{"named", 42, "update", "x", "id: 42\nevent: update\ndata: x\n\n", sseEvent{"42", "update", "x"}},
		{"multi-line lf", 2, "", "a\nb\nc", "id: 2\ndata: a\ndata: b\ndata: c\n\n", sseEvent{"2", "", "a\nb\nc"}},
		{"multi-line crlf and cr", 3, "", "a\r\nb\rc", "id: 3\ndata: a\ndata: b\ndata: c\n\n", sseEvent{"3", "", "a\nb\nc"}},
		{"trailing newline", 4, "", "a\n", "id: 4\ndata: a\ndata: \n\n", sseEvent{"4", "", "a\n"}},
		{"empty data still dispatched", 5, "", "", "id: 5\ndata: \n\n", sseEvent{"5", "", ""}},
		{"leading space kept", 6, "", " x", "id: 6\ndata:  x\n\n", sseEvent{"6", "", " x"}},
		{"event injection stripped", 7, "a\nid: 99\n", "d", "id: 7\nevent: aid: 99\ndata: d\n\n", sseEvent{"7", "aid: 99", "d"}},
		{"max id", 1<<64 - 1, "", "m", "id: 18446744073709551615\ndata: m\n\n", sseEvent{"18446744073709551615", "", "m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendEvent(nil, tc.id, tc.event, []byte(tc.data)))
			if got != tc.wire {
				t.Fatalf("wire %q, want %q", got, tc.wire)
			}
			evs, _ := parseSSE(got)
			if len(evs) != 1 || evs[0] != tc.want {
				t.Fatalf("client sees %+v, want %+v", evs, tc.want)
			}
		})
	}
}

func TestSSEControlLines(t *testing.T) {
	stream := string(AppendEvent(nil, 9, "", []byte("m")))
	stream += string(AppendKeepalive(nil))
	stream += string(AppendRetry(nil, 2500))
	stream += string(AppendGoAway(nil, "max connection lifetime\nreconnect"))
	evs, lastID := parseSSE(stream)
	want := []sseEvent{{"9", "", "m"}, {"9", "goaway", "max connection lifetime\nreconnect"}}
	if fmt.Sprint(evs) != fmt.Sprint(want) || lastID != "9" {
		t.Fatalf("events %+v last id %q", evs, lastID)
	}
	if !strings.HasPrefix(string(AppendSSEResponse(nil)), "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream") {
		t.Fatal("response head")
	}
}

func TestParseLastEventID(t *testing.T) {
	for _, tc := range []struct {
		in string
		id uint64
		ok bool
	}{{"1", 1, true}, {" 42 ", 42, true}, {"18446744073709551615", 1<<64 - 1, true}, {"18446744073709551616", 0, false},
		{"", 0, false}, {"-1", 0, false}, {"1a", 0, false}, {"99999999999999999999999", 0, false}} {
		id, ok := ParseLastEventID([]byte(tc.in))
		if id != tc.id || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.in, id, ok, tc.id, tc.ok)
		}
	}
}

func TestEventRing(t *testing.T) {
	r := NewEventRing(3, 1<<10, 100)
	if r.LastID() != 99 {
		t.Fatalf("LastID before any event: %d", r.LastID())
	}
	if out, complete := r.Since(nil, 99); len(out) != 0 || !complete {
		t.Fatal("empty ring: replay from the start")
	}
	var live []byte
	for i := 0; i < 5; i++ {
		var id uint64
		live, id = r.Append(live, "", []byte(fmt.Sprint("m", i)))
		if id != uint64(100+i) {
			t.Fatalf("id %d", id)
		}
	}
	if evs, _ := parseSSE(string(live)); len(evs) != 5 || evs[4] != (sseEvent{"104", "", "m4"}) {
		t.Fatalf("live bytes: %+v", evs)
	}
	tests := []struct {
		last     uint64
		ids      []string
		complete bool
	}{
		{104, nil, true},             // up to date
		{103, []string{"104"}, true}, // one missed
		{101, []string{"102", "103", "104"}, true},
		{100, []string{"102", "103", "104"}, false}, // 101 was evicted
		{5, []string{"102", "103", "104"}, false},   // from long ago
		{500, nil, false},                           // not an id of this ring
	}
	for _, tc := range tests {
		out, complete := r.Since(nil, tc.last)
		evs, _ := parseSSE(string(out))
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.id)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.ids) || complete != tc.complete {
			t.Errorf("Since(%d) = %v complete %v, want %v %v", tc.last, ids, complete, tc.ids, tc.complete)
		}
	}
	if n, _ := r.Len(); n != 3 {
		t.Fatalf("kept %d events", n)
	}
}

func TestEventRingByteBound(t *testing.T) {
	const maxBytes = 400
	r := NewEventRing(100, maxBytes, 1)
	for i := 0; i < 50; i++ {
		r.Append(nil, "e", []byte(strings.Repeat("x", i*7%90)))
		if _, b := r.Len(); b > maxBytes {
			t.Fatalf("after %d events the ring holds %d bytes", i+1, b)
		}
	}
	// An event over the whole bound is not kept, and a replay across it is a gap.
	_, big := r.Append(nil, "", []byte(strings.Repeat("B", maxBytes)))
	r.Append(nil, "", []byte("after"))
	out, complete := r.Since(nil, big-1)
	if complete || !strings.Contains(string(out), "after") || strings.Contains(string(out), "BBB") {
		t.Fatalf("replay across the big event: complete %v %q", complete, out)
	}
	if out, complete := r.Since(nil, big); !complete || !strings.Contains(string(out), "after") {
		t.Fatalf("replay after the big event: complete %v %q", complete, out)
	}
}

func TestEventRingConcurrent(t *testing.T) {
	r := NewEventRing(8, 4096, 1)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; i < 500; i++ {
				buf, _ = r.Append(buf[:0], "", []byte("concurrent"))
				buf, _ = r.Since(buf[:0], r.LastID()-3)
			}
		}()
	}
	wg.Wait()
	if r.LastID() != 2000 {
		t.Fatalf("last id %d", r.LastID())
	}
}

func TestSSENoAllocs(t *testing.T) {
	dst := make([]byte, 0, 512)
	data := []byte(strings.Repeat("line\n", 10))
	r := NewEventRing(4, 4096, 1)
	for i := 0; i < 8; i++ {
		dst, _ = r.Append(dst[:0], "update", data) // warm the slots
	}
	for name, fn := range map[string]func(){
		"event":     func() { dst = AppendEvent(dst[:0], 12345, "update", data) },
		"keepalive": func() { dst = AppendKeepalive(dst[:0]) },
		"goaway":    func() { dst = AppendGoAway(dst[:0], "bye") },
		"ring":      func() { dst, _ = r.Append(dst[:0], "update", data) },
	} {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s allocates %.1f times", name, a)
		}
	}
}
