package push

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gozer/gateway/internal/redistest"
)

// startStore runs a RedisHistory on a real redis-server.
func startStore(t *testing.T, addr string) *RedisHistory {
	t.Helper()
	s := NewRedisHistory(NewRedisClient(addr), 3, time.Minute, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); _ = s.Close() })
	return s
}

func TestRedisHistoryAppendRead(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	s := startStore(t, rs.Addr)
	now := time.Now().UnixMilli()
	en := func(id uint64, m string) Entry { return Entry{ID: id, At: now, Msg: []byte(m)} }

	steps := []struct {
		name         string
		seen         bool // mark the id seen first
		e            Entry
		force, wantS bool
	}{
		{"unknown id, not forced: refused", false, en(1, "x"), false, false},
		{"forced (a device took it)", false, en(2, "a"), true, true},
		{"a history alone is not seen", false, en(3, "y"), false, false},
		{"seen", true, en(4, "b"), false, true},
		{"capped at 3", false, en(5, "c"), false, true},
		{"capped at 3, oldest goes", false, en(6, "d"), false, true},
	}
	for _, tc := range steps {
		if tc.seen {
			s.Seen("u") // queued before the append: written first
		}
		stored, err := s.Append("u", tc.e, tc.force, true)
		if err != nil || stored != tc.wantS {
			t.Errorf("%s: stored %v %v, want %v", tc.name, stored, err, tc.wantS)
		}
	}
	s.Seen("seen-only")
	if stored, err := s.Append("seen-only", en(9, "z"), false, true); !stored || err != nil {
		t.Errorf("append to an id marked seen: %v %v, want stored", stored, err)
	}
	got, err := s.ReadMany(context.Background(), []string{"u", "nothing", "seen-only"})
	if err != nil {
		t.Fatal(err)
	}
	if m := msgsOf(got[0]); !slices.Equal(m, []string{"b", "c", "d"}) || len(got[1]) != 0 || len(got[2]) != 1 {
		t.Errorf("ReadMany: %v / %v / %v, want [b c d] / [] / [z]", m, got[1], got[2])
	}
}

// Redis down: appends fail with an error (not "not stored"), and the
// failures are counted.
func TestRedisHistoryDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	s := startStore(t, rs.Addr)
	rs.Kill()
	e := Entry{ID: 1, At: time.Now().UnixMilli(), Msg: []byte("x")}
	for i := range 3 {
		if stored, err := s.Append("d", e, true, true); err == nil || stored {
			t.Errorf("append %d with Redis down: stored %v, error %v; want an error", i, stored, err)
		}
	}
	if s.Stats().Failures == 0 {
		t.Errorf("no failure counted")
	}
}

// Recover in cluster mode: messages delivered while the worker reads Redis are
// held, then come after the replay, once.
func TestHistoryRecoverFromRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	s := startStore(t, rs.Addr)
	reg := NewRegistry(0)
	h := NewHistory(HistoryConfig{MaxMessages: 10, MaxBytes: 1 << 16, MaxAge: time.Minute, MaxTotal: 1 << 20}, reg, s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	// Another node's pushes, in Redis only.
	now := time.Now().UnixMilli()
	for i, m := range []string{"a", "b", "c"} {
		if _, err := s.Append("dev", Entry{ID: uint64(100 + i), At: now, Msg: []byte(m)}, true, true); err != nil {
			t.Fatal(err)
		}
	}
	c := &recConn{}
	done := make(chan Replay, 1)
	if _, err := h.Recover("dev", c, 100, func(r Replay) { done <- r }); err != nil {
		t.Fatal(err)
	}
	var r Replay
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no replay within 5s")
	}
	if r.Resync || !slices.Equal(msgsOf(r.Entries), []string{"b", "c"}) {
		t.Errorf("replay after 100: %+v, want b c", r)
	}
}

// Many appends in one pipeline (the writer's batch: keys and arguments cut
// from one allocation each, passed by pointer), mixed with seen markers and
// refused appends, and again after Redis forgot the script (NOSCRIPT: the
// batch is sent again with the same arguments): each id gets exactly its own
// entries, in order, and each answer is its own.
func TestRedisHistoryBatch(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	s := NewRedisHistory(NewRedisClient(rs.Addr), 100, time.Minute, zerolog.Nop())
	raw := rawRedis(t, rs.Addr)
	for round, flush := range []bool{false, true} {
		if flush {
			must(t, raw.ScriptFlush(testCtx(t)).Err())
		}
		const ids, per = 64, 3
		// Queued before the writer runs: one batch (writeBatch > ids*per).
		answers := make([]chan writeResult, 0, ids*per)
		for i := range ids {
			id := fmt.Sprintf("b%d-%d", round, i)
			if i%4 == 1 {
				s.Seen(id)
			}
			for k := range per {
				msg := fmt.Sprintf("%s/%d", id, k)
				// ids 0 mod 4 forced; 1 mod 4 seen; others neither: refused.
				w := histWrite{id: id, entry: entryString(Entry{ID: uint64(k + 1), At: time.Now().UnixMilli(), Msg: []byte(msg)}),
					force: i%4 == 0, done: make(chan writeResult, 1)}
				s.ch <- w
				answers = append(answers, w.done)
			}
		}
		if got := len(s.ch); got != ids*per+ids/4 {
			t.Fatalf("queued %d writes, want %d", got, ids*per+ids/4)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		for j, ch := range answers {
			r := <-ch
			if want := (j/per)%4 <= 1; r.err != nil || r.stored != want {
				t.Errorf("round %d, write %d (id %d): stored %v %v, want %v", round, j, j/per, r.stored, r.err, want)
			}
		}
		cancel()
		wg.Wait()
		names := make([]string, ids)
		for i := range names {
			names[i] = fmt.Sprintf("b%d-%d", round, i)
		}
		got, err := s.ReadMany(context.Background(), names)
		must(t, err)
		for i, es := range got {
			var want []string
			if i%4 <= 1 {
				for k := range per {
					want = append(want, fmt.Sprintf("%s/%d", names[i], k))
				}
			}
			if m := msgsOf(es); !slices.Equal(m, want) {
				t.Errorf("round %d, %s: %v, want %v", round, names[i], m, want)
			}
		}
	}
}

func TestBothKeys(t *testing.T) {
	for _, id := range []string{"", "a", "dev-12345", "ünïcode"} {
		h, s := bothKeys(id)
		if h != histKey(id) || s != seenKey(id) {
			t.Errorf("bothKeys(%q) = %q %q, want %q %q", id, h, s, histKey(id), seenKey(id))
		}
	}
}
