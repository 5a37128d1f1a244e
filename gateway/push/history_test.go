package push

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// recConn records the ids and messages it was pushed.
type recConn struct {
	mu  sync.Mutex
	got []string // "id:msg"
}

func (c *recConn) Push(msg []byte, binary bool) error { return c.PushID(msg, binary, 0) }

func (c *recConn) PushID(msg []byte, _ bool, id uint64) error {
	c.mu.Lock()
	c.got = append(c.got, fmt.Sprintf("%d:%s", id, msg))
	c.mu.Unlock()
	return nil
}

// testHistory is a History on a clock the test moves.
type testHistory struct {
	*History
	now time.Time
}

func newTestHistory(cfg HistoryConfig) *testHistory {
	th := &testHistory{now: time.UnixMilli(1_800_000_000_000)}
	cfg.Now = func() time.Time { return th.now }
	if cfg.MaxAge == 0 {
		cfg.MaxAge = time.Minute
	}
	if cfg.MaxTotal == 0 {
		cfg.MaxTotal = 1 << 20
	}
	th.History = NewHistory(cfg, NewRegistry(0), nil)
	return th
}

func (th *testHistory) push(t *testing.T, id, msg string) Delivery {
	t.Helper()
	return th.Deliver(id, []byte(msg), false)
}

func msgsOf(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Msg))
	}
	return out
}

// A device that leaves, misses three pushes (stored, not refused), and comes
// back with its last id gets exactly those, then live ones; an id nobody saw is
// refused; ids grow.
func TestHistoryRecoverAfterLeave(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 10, MaxBytes: 1 << 16})
	if d := th.push(t, "dev", "before anyone"); d.Stored || d.Reached != 0 || d.ID == 0 {
		t.Fatalf("push to an unknown id: %+v, want an id, not stored, not reached", d)
	}
	c1 := &recConn{}
	if _, _, err := th.Attach("dev", c1, 0, false); err != nil {
		t.Fatal(err)
	}
	d1 := th.push(t, "dev", "one")
	if d1.Reached != 1 || !d1.Stored {
		t.Fatalf("push to a connected id: %+v, want reached 1 and stored", d1)
	}
	th.Left("dev")
	th.reg.Remove("dev", c1)
	var ids []uint64
	for _, m := range []string{"two", "three", "four"} {
		th.now = th.now.Add(time.Second)
		d := th.push(t, "dev", m)
		if d.Reached != 0 || !d.Stored || d.ID <= d1.ID {
			t.Fatalf("push %q while away: %+v, want stored with an id above %d", m, d, d1.ID)
		}
		ids = append(ids, d.ID)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("ids %v do not grow", ids)
	}
	c2 := &recConn{}
	_, r, err := th.Attach("dev", c2, d1.ID, true)
	if err != nil || r.Resync || !slices.Equal(msgsOf(r.Entries), []string{"two", "three", "four"}) {
		t.Fatalf("Attach after %d: %+v %v, want two three four", d1.ID, r, err)
	}
	th.push(t, "dev", "five")
	if got := c2.got; len(got) != 1 || !bytes.HasSuffix([]byte(got[0]), []byte(":five")) {
		t.Errorf("live after the replay: %v, want five only", got)
	}
}

// A forwarded message this node keeps already (a recovery replayed it from
// Redis before the forward came) is not sent again.
func TestHistoryDeliverIDOnce(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 10, MaxBytes: 1 << 16})
	c := &recConn{}
	th.Attach("f", c, 0, false)
	for range 2 {
		if d := th.DeliverID("f", 42, []byte("x"), false); d.ID != 42 || d.Reached != 1 {
			t.Fatalf("DeliverID: %+v, want id 42 reached 1", d)
		}
	}
	if len(c.got) != 1 || c.got[0] != "42:x" {
		t.Errorf("device got %v, want 42:x once", c.got)
	}
}

// The push API hands Deliver an id that borrows its request buffer; the
// history must key on a copy (the bug: a later request overwrote the key).
func TestHistoryKeepsACopyOfTheID(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 10, MaxBytes: 1 << 16})
	c := &recConn{}
	th.Attach("dev-1", c, 0, false)
	buf := []byte("dev-1")
	d := th.Deliver(unsafe.String(&buf[0], len(buf)), []byte("m"), false)
	copy(buf, "xxx-9")
	th.reg.Remove("dev-1", c)
	th.Left("dev-1")
	th.push(t, "dev-1", "after")
	if _, r, _ := th.Attach("dev-1", &recConn{}, d.ID, true); r.Resync || !slices.Equal(msgsOf(r.Entries), []string{"after"}) {
		t.Errorf("replay after the borrowed id's buffer changed: %+v, want [after]", r)
	}
}

func TestHistoryReplayCases(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 3, MaxBytes: 1 << 16})
	c := &recConn{}
	if _, _, err := th.Attach("x", c, 0, false); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for i := range 5 {
		ids = append(ids, th.push(t, "x", fmt.Sprint("m", i)).ID)
	}
	for _, tc := range []struct {
		name   string
		last   uint64
		want   []string
		resync bool
	}{
		{"within the history", ids[2], []string{"m3", "m4"}, false},
		{"just before the oldest kept", ids[1], []string{"m2", "m3", "m4"}, false},
		{"newest: nothing missed", ids[4], nil, false},
		{"older than the history", ids[0], nil, true},
		{"never given out", ids[4] + 7, nil, true},
		{"zero", 0, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r, err := th.Attach("x", &recConn{}, tc.last, true)
			if err != nil || r.Resync != tc.resync || !slices.Equal(msgsOf(r.Entries), tc.want) {
				t.Errorf("Attach(last %d): %+v %v, want %v resync %v", tc.last, r, err, tc.want, tc.resync)
			}
			if r.Resync && r.Newest != ids[4] {
				t.Errorf("resync names newest %d, want %d", r.Newest, ids[4])
			}
		})
	}
}

// Pushes to an id whose device left do not keep it "recently seen": once
// max_age passed since it left, a push is refused, though its messages were
// stored meanwhile.
func TestHistorySeenWindow(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 10, MaxBytes: 1 << 16})
	th.Left("w")
	for range 5 {
		th.now = th.now.Add(20 * time.Second)
		if d := th.push(t, "w", "x"); th.now.Sub(time.UnixMilli(1_800_000_000_000)) <= time.Minute && !d.Stored {
			t.Fatalf("push within the window: %+v, want stored", d)
		} else if th.now.Sub(time.UnixMilli(1_800_000_000_000)) > time.Minute && d.Stored {
			t.Fatalf("push %v after the device left (max_age 1m): %+v, want refused", th.now.Sub(time.UnixMilli(1_800_000_000_000)), d)
		}
	}
}

// The bounds: bytes per id, total bytes (not stored: Full), age.
func TestHistoryBounds(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 100, MaxBytes: 3 * (EntryOverhead + 10), MaxTotal: 5 * (EntryOverhead + 10)})
	th.Left("a")
	th.Left("b")
	for i := range 4 {
		if d := th.Deliver("a", bytes.Repeat([]byte{'a'}, 10), false); !d.Stored {
			t.Fatalf("push %d to a: %+v, want stored", i, d)
		}
	}
	if n, b := len(th.shard("a").m["a"].entries), th.total.Load(); n != 3 || b != 3*(EntryOverhead+10) {
		t.Errorf("a keeps %d messages, %d bytes in all; want 3 (max_bytes) and %d", n, b, 3*(EntryOverhead+10))
	}
	th.Deliver("b", bytes.Repeat([]byte{'b'}, 10), false)
	th.Deliver("b", bytes.Repeat([]byte{'b'}, 10), false)
	if d := th.Deliver("b", bytes.Repeat([]byte{'b'}, 10), false); d.Stored || !d.Full {
		t.Errorf("push over max_total: %+v, want Full", d)
	}
	cb := &recConn{}
	if _, r, _ := th.Attach("b", cb, 1, true); !r.Resync {
		t.Errorf("after a message that could not be kept, a replay must resync: %+v", r)
	}
	th.reg.Remove("b", cb)
	th.now = th.now.Add(2 * time.Minute)
	if d := th.push(t, "a", "late"); d.Stored {
		t.Errorf("push to an id last seen 2 minutes ago (max_age 1m): %+v, want not stored", d)
	}
	th.sweep()
	if st := th.Stats(); st.Bytes != 0 || st.IDs != 0 {
		t.Errorf("after max_age: %+v, want nothing kept", st)
	}
}

// Pushes racing with devices attaching: every device sees every message
// after its last id exactly once, in order, from the replay or live.
func TestHistoryAttachRace(t *testing.T) {
	th := newTestHistory(HistoryConfig{MaxMessages: 1000, MaxBytes: 1 << 20})
	th.Left("r")
	const n = 300
	first := th.push(t, "r", "start").ID
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			th.push(t, "r", fmt.Sprint(i))
		}
	})
	type dev struct {
		c *recConn
		r Replay
	}
	var devs []dev
	for range 20 {
		c := &recConn{}
		_, r, err := th.Attach("r", c, first, true)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, dev{c, r})
	}
	wg.Wait()
	for i, d := range devs {
		got := msgsOf(d.r.Entries)
		for _, s := range d.c.got {
			got = append(got, s[bytes.IndexByte([]byte(s), ':')+1:])
		}
		want := make([]string, n)
		for j := range want {
			want[j] = fmt.Sprint(j)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("device %d: replay %d + live %d messages, want 0..%d exactly once in order", i, len(d.r.Entries), len(d.c.got), n-1)
		}
	}
}

func TestEntryEncoding(t *testing.T) {
	for _, e := range []Entry{
		{ID: 1, At: 2, Msg: []byte("hello")},
		{ID: 1<<63 + 5, At: 1_800_000_000_000, Msg: []byte{0, 0xff}, Binary: true},
		{ID: 9, At: 0, Msg: []byte{}},
	} {
		got, err := DecodeEntry(EncodeEntry(nil, e))
		if err != nil || got.ID != e.ID || got.At != e.At || got.Binary != e.Binary || !bytes.Equal(got.Msg, e.Msg) {
			t.Errorf("round trip of %+v: %+v %v", e, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, append([]byte{2}, make([]byte, 17)...), append([]byte{1}, make([]byte, 17)...),
		EncodeEntry(nil, Entry{ID: 1, Msg: []byte{0xff}})} {
		if _, err := DecodeEntry(bad); err == nil {
			t.Errorf("DecodeEntry(%x) accepted", bad)
		}
	}
}

// FuzzHistoryEntry: any bytes from Redis decode or are refused, never panic,
// and what decodes encodes back to the same bytes.
func FuzzHistoryEntry(f *testing.F) {
	for _, s := range entrySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeEntry(nil, e), b) {
			t.Fatalf("%x decodes to %+v, which encodes differently", b, e)
		}
	})
}

func entrySeeds() [][]byte {
	return [][]byte{
		EncodeEntry(nil, Entry{ID: 1_800_000_000_000_001, At: 1_800_000_000_000, Msg: []byte("hello")}),
		EncodeEntry(nil, Entry{ID: 7, At: 1, Msg: []byte{0, 1, 2}, Binary: true}),
		{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
		[]byte("not an entry"),
	}
}
