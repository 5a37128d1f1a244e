package compress

import (
	"bytes"
	"testing"
)

func TestPoolBound(t *testing.T) {
	p := NewPool(DefaultLevel, 3)
	a, b, c := p.Get(Gzip), p.Get(Brotli), p.Get(Zstd)
	if a == nil || b == nil || c == nil {
		t.Fatal("Get returned nil below the bound")
	}
	if a.Encoding() != Gzip || b.Encoding() != Brotli || c.Encoding() != Zstd {
		t.Fatalf("codings %v %v %v, want gzip br zstd", a.Encoding(), b.Encoding(), c.Encoding())
	}
	if d := p.Get(Gzip); d != nil {
		t.Fatal("Get returned an encoder beyond the bound")
	}
	if st := p.Stats(); st != (Stats{InUse: 3, Idle: 0, Refused: 1, Created: 3}) {
		t.Errorf("stats %+v", st)
	}

	// The one given back is the one handed out next, ready for a new stream.
	if _, err := a.Write([]byte("half a response")); err != nil {
		t.Fatal(err)
	}
	p.Put(a)
	if got := p.Get(Gzip); got != a {
		t.Fatal("Get did not reuse the idle gzip encoder")
	}
	body := testBody(t, "page.html")
	if got, err := decodeAll(Gzip, encodeAll(t, a, body, 8192)); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("reused encoder: err %v, body equal %v", err, bytes.Equal(got, body))
	}

	// Full, with an idle brotli encoder: a zstd Get evicts it rather than fail.
	p.Put(b)
	p.Put(c)
	if got := p.Get(Zstd); got != c {
		t.Fatal("Get did not reuse the idle zstd encoder")
	}
	if st := p.Stats(); st.InUse != 2 || st.Idle != 1 {
		t.Fatalf("stats %+v, want 2 in use, 1 idle", st)
	}
	d := p.Get(Zstd)
	if d == nil || d == c {
		t.Fatal("Get did not build a new zstd encoder in place of the idle brotli one")
	}
	if st := p.Stats(); st != (Stats{InUse: 3, Idle: 0, Refused: 1, Created: 4}) {
		t.Errorf("stats %+v", st)
	}
	if p.Get(Brotli) != nil {
		t.Error("the evicted brotli encoder is still counted as idle")
	}
}

func TestPoolPutGuards(t *testing.T) {
	p := NewPool(DefaultLevel, 2)
	other := NewPool(DefaultLevel, 2)
	enc := p.Get(Brotli)
	p.Put(enc)
	p.Put(enc) // second Put: ignored
	p.Put(nil)
	p.Put(other.Get(Gzip)) // another pool's: ignored
	standalone, err := NewEncoder(Zstd, DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	p.Put(standalone) // not from a pool: ignored
	if st := p.Stats(); st.InUse != 0 || st.Idle != 1 {
		t.Fatalf("stats %+v, want 0 in use, 1 idle", st)
	}
	x, y := p.Get(Brotli), p.Get(Brotli)
	if x != enc || y == nil || y == enc {
		t.Fatal("a double Put made the same encoder available twice")
	}
}

func TestPoolGetNone(t *testing.T) {
	p := NewPool(DefaultLevel, 2)
	if p.Get(None) != nil || p.Get(Encoding(8)) != nil {
		t.Error("Get of a coding that is not one returned an encoder")
	}
	if st := p.Stats(); st != (Stats{}) {
		t.Errorf("stats %+v, want zero", st)
	}
}

func TestPoolTrim(t *testing.T) {
	p := NewPool(DefaultLevel, 8)
	var encs []*Encoder
	for _, e := range []Encoding{Gzip, Gzip, Gzip, Brotli, Zstd} {
		encs = append(encs, p.Get(e))
	}
	for _, enc := range encs {
		p.Put(enc)
	}
	if n := p.Trim(2); n != 3 {
		t.Errorf("Trim(2) dropped %d, want 3", n)
	}
	if st := p.Stats(); st.Idle != 2 {
		t.Errorf("idle %d after Trim(2)", st.Idle)
	}
	if n := p.Trim(-1); n != 2 || p.Stats().Idle != 0 {
		t.Errorf("Trim(-1) dropped %d, idle %d; want all gone", n, p.Stats().Idle)
	}
}

func TestNewPoolClamps(t *testing.T) {
	for _, tc := range []struct{ level, limit, wantLevel, wantMax int }{
		{0, 0, DefaultLevel, DefaultMaxEncoders},
		{-3, -1, MinLevel, DefaultMaxEncoders},
		{12, 5, MaxLevel, 5},
		{7, 1, 7, 1},
	} {
		p := NewPool(tc.level, tc.limit)
		if p.Level() != tc.wantLevel || p.max != tc.wantMax {
			t.Errorf("NewPool(%d, %d): level %d, max %d; want %d, %d", tc.level, tc.limit, p.Level(), p.max, tc.wantLevel, tc.wantMax)
		}
		if p.Get(Brotli) == nil {
			t.Errorf("NewPool(%d, %d): Get failed", tc.level, tc.limit)
		}
	}
}

// TestPoolSteadyStateAllocations: once its encoders exist, a pool serves response
// after response without building anything. The codecs themselves still allocate
// a little per stream (zstd two small buffers); the point is that it stays small.
func TestPoolSteadyStateAllocations(t *testing.T) {
	body := testBody(t, "api.json")
	p := NewPool(DefaultLevel, 4)
	for _, e := range codings {
		run := func() {
			enc := p.Get(e)
			for piece := body; len(piece) > 0; piece = piece[min(len(piece), 16<<10):] {
				if _, err := enc.Write(piece[:min(len(piece), 16<<10)]); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := enc.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			p.Put(enc)
		}
		run()
		allocs := testing.AllocsPerRun(20, run)
		t.Logf("%v: %.0f allocations per 64 KiB response once warm", e, allocs)
		// Brotli keeps scratch buffers in sync.Pools, which the race detector
		// empties at random: allow for the refills there.
		limit := 8.0
		if raceEnabled {
			limit = 50
		}
		if allocs > limit {
			t.Errorf("%v: %.0f allocations per response once warm", e, allocs)
		}
	}
	if st := p.Stats(); st.Created != 3 {
		t.Errorf("created %d encoders for 3 codings", st.Created)
	}
}

// TestPoolOneShotAllocations: a small gzip body, compressed in one shot by a warm
// encoder, allocates nothing at all.
func TestPoolOneShotAllocations(t *testing.T) {
	body := testBody(t, "api.json")[:1935]
	p := NewPool(DefaultLevel, 1)
	run := func() {
		enc := p.Get(Gzip)
		if _, err := enc.Write(body); err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		p.Put(enc)
	}
	run()
	if allocs := testing.AllocsPerRun(50, run); allocs != 0 {
		t.Errorf("%.0f allocations per small gzip response once warm", allocs)
	}
}
