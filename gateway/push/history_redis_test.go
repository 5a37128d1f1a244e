package push

import (
	"context"
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
