package push

import (
	"bytes"
	"strconv"
	"sync"

	"gozer/gateway/httpcodec"
)

// SSE (Server-Sent Events, the WHATWG HTML "server-sent events" section) on
// the wire: events are blocks of "field: value" lines ended by an empty line.
// These encoders append to dst, do not allocate when dst has room, and may be
// used from any goroutine.

// AppendSSEResponse appends the head of the 200 answer that opens an event
// stream. The body has no length and is not chunked: it runs until the
// connection closes, which every EventSource client expects.
func AppendSSEResponse(dst []byte) []byte {
	return append(dst, "HTTP/1.1 200 OK\r\n"+
		"Content-Type: text/event-stream; charset=utf-8\r\n"+
		"Cache-Control: no-cache, no-store\r\n"+
		"Connection: close\r\n"+
		"X-Accel-Buffering: no\r\n\r\n"...)
}

// AppendEvent appends one event: "id: <id>", then "event: <event>" unless
// event is empty (the client then sees a "message" event), then one "data: "
// line per line of data (lines end at LF, CRLF or CR, as the client splits
// them), then the empty line that dispatches the event. CR and LF bytes in
// event are dropped so that it cannot inject fields. Empty data is sent as one
// empty data line, so the event is still dispatched. data should be UTF-8
// (clients decode it as such); send binary messages base64-encoded.
func AppendEvent(dst []byte, id uint64, event string, data []byte) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, '\n')
	if event != "" {
		dst = append(dst, "event: "...)
		dst = appendFieldValue(dst, event)
		dst = append(dst, '\n')
	}
	dst = appendData(dst, data)
	return append(dst, '\n')
}

// appendData appends data as "data: " lines.
func appendData(dst, data []byte) []byte {
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			dst = append(dst, "data: "...)
			dst = append(dst, data...)
			return append(dst, '\n')
		}
		dst = append(dst, "data: "...)
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// appendFieldValue appends s without its CR and LF bytes.
func appendFieldValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\r' && c != '\n' {
			dst = append(dst, c)
		}
	}
	return dst
}

// AppendKeepalive appends a comment line and an empty line: clients ignore it,
// proxies and the client's idle timers see traffic.
func AppendKeepalive(dst []byte) []byte {
	return append(dst, ": keepalive\n\n"...)
}

// AppendRetry appends a "retry:" field (in its own event block) that sets how
// long the client waits before reconnecting, in milliseconds.
func AppendRetry(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, "\n\n"...)
}

// AppendGoAway appends an "event: goaway" event whose data is reason. It
// carries no id, so the client's Last-Event-ID stays that of the last real
// event and a reconnect replays from there.
func AppendGoAway(dst []byte, reason string) []byte {
	dst = append(dst, "event: goaway\n"...)
	for {
		i := indexCRLF(reason)
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, reason...)
			return append(dst, "\n\n"...)
		}
		dst = append(dst, reason[:i]...)
		dst = append(dst, '\n')
		if reason[i] == '\r' && i+1 < len(reason) && reason[i+1] == '\n' {
			i++
		}
		reason = reason[i+1:]
	}
}

func indexCRLF(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return i
		}
	}
	return -1
}

// ParseLastEventID parses a Last-Event-ID header value as the decimal id this
// package writes. ok is false when it is absent or not such a number.
func ParseLastEventID(v []byte) (id uint64, ok bool) {
	v = httpcodec.TrimOWS(v)
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if id > (1<<64-1-d)/10 {
			return 0, false
		}
		id = id*10 + d
	}
	return id, true
}

// EventRing keeps the most recent events of one stream (one client id, or one
// connection) encoded for SSE, so that a client reconnecting with
// Last-Event-ID gets what it missed while that is still kept. It assigns the
// event ids: consecutive numbers from the first id it was made with.
//
// Memory is bounded by maxEvents and maxBytes: the bytes counted are the
// capacities of the buffers the kept events occupy, plus one event over the
// bound while it is being added. An event larger than maxBytes is given an id
// but not kept (a replay across it reports a gap).
//
// Concurrency: safe for any goroutine (a mutex; appends and replays are rare
// compared with frames). Slices it returns were appended to the caller's dst.
type EventRing struct {
	mu       sync.Mutex
	slots    []ringSlot
	head     int // index of the oldest kept event
	n        int // events kept
	bytes    int // sum of cap(buf) of the slots holding a buffer
	maxBytes int
	nextID   uint64
	oldest   uint64 // id of the oldest event still kept, or nextID when none
}

type ringSlot struct {
	id  uint64
	buf []byte
}

// NewEventRing returns a ring keeping up to maxEvents events and maxBytes
// bytes; the first event gets id firstID (use something that grows across
// restarts, such as the current time in milliseconds, so that a client's old
// Last-Event-ID is not mistaken for a new one). firstID 0 is taken as 1.
func NewEventRing(maxEvents, maxBytes int, firstID uint64) *EventRing {
	if maxEvents < 1 {
		maxEvents = 1
	}
	if firstID == 0 {
		firstID = 1
	}
	return &EventRing{slots: make([]ringSlot, maxEvents), maxBytes: maxBytes, nextID: firstID, oldest: firstID}
}

// Append records a new event and appends its SSE encoding to dst (for the
// live connections); it returns the extended dst and the event's id.
func (r *EventRing) Append(dst []byte, event string, data []byte) ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextID
	r.nextID++
	start := len(dst)
	dst = AppendEvent(dst, id, event, data)
	enc := dst[start:]
	if len(enc) > r.maxBytes {
		r.evict(r.n) // keeping it would break the bound; a replay sees the gap
		r.oldest = r.nextID
		return dst, id
	}
	var reuse []byte
	if r.n == len(r.slots) { // full by count: take over the oldest slot's buffer
		reuse = r.slots[r.head].buf
		r.bytes -= cap(reuse)
		if cap(reuse) > 2*len(enc)+64 {
			reuse = nil // do not let one big event pin a big buffer
		}
		r.slots[r.head] = ringSlot{}
		r.head = (r.head + 1) % len(r.slots)
		r.n--
	}
	buf := append(reuse[:0], enc...)
	r.bytes += cap(buf)
	for r.bytes > r.maxBytes && r.n > 0 {
		r.evict(1)
	}
	r.slots[(r.head+r.n)%len(r.slots)] = ringSlot{id: id, buf: buf}
	r.n++
	r.oldest = r.slots[r.head].id
	return dst, id
}

// evict drops the k oldest events.
func (r *EventRing) evict(k int) {
	for ; k > 0 && r.n > 0; k-- {
		s := &r.slots[r.head]
		r.bytes -= cap(s.buf)
		*s = ringSlot{}
		r.head = (r.head + 1) % len(r.slots)
		r.n--
	}
}

// Since appends the kept events with an id after lastID to dst, oldest first.
// complete is false when some event after lastID is no longer kept (or lastID
// is not an id this ring gave out): the client missed something, and the core
// may tell it so. A lastID of at least the newest id appends nothing and is
// complete.
func (r *EventRing) Since(dst []byte, lastID uint64) (out []byte, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lastID >= r.nextID-1 {
		return dst, lastID == r.nextID-1
	}
	complete = lastID+1 >= r.oldest
	for i := 0; i < r.n; i++ {
		s := &r.slots[(r.head+i)%len(r.slots)]
		if s.id > lastID {
			dst = append(dst, s.buf...)
		}
	}
	return dst, complete
}

// LastID returns the id of the newest event given out (firstID-1 before any).
func (r *EventRing) LastID() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nextID - 1
}

// Len returns how many events and bytes (buffer capacities) the ring keeps.
func (r *EventRing) Len() (events, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.bytes
}
