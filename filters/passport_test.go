package filters

import "testing"

func TestPassport(t *testing.T) {
	var off *Passport
	off.Mark(PassStart, "") // a nil passport records nothing, and does not panic
	off.MarkAt(PassEnd, "", 1)

	var p Passport
	p.MarkAt(PassStart, "", 10)
	p.MarkAt(PassFilterStart, "auth", 20)
	if e := p.Entries(); len(e) != 2 || e[1].State != PassFilterStart || e[1].Detail != "auth" || e[1].At != 20 {
		t.Fatalf("entries %+v", e)
	}
	for range PassportLen {
		p.Mark(PassAttemptStart, "s")
	}
	if len(p.Entries()) != PassportLen || p.Lost() != 2 {
		t.Fatalf("%d entries, %d lost; want %d, 2", len(p.Entries()), p.Lost(), PassportLen)
	}
	p.Reset()
	if len(p.Entries()) != 0 || p.Lost() != 0 || p.e[0].Detail != "" {
		t.Fatalf("after Reset: %d entries, %d lost, %q kept", len(p.Entries()), p.Lost(), p.e[0].Detail)
	}
	for s := PassStart; s <= PassEnd; s++ {
		if s.String() == "" || s.String() == "unknown" {
			t.Errorf("state %d has no name", s)
		}
	}
	if n := testing.AllocsPerRun(100, func() { p.Reset(); p.Mark(PassRoute, "api") }); n != 0 {
		t.Fatalf("%v allocations per step", n)
	}
}

// BenchmarkPassport is a request's worth of steps (12: start, two filters,
// route, an attempt's four, response head, two outbound filters, end), off
// (a nil passport, as the core leaves it when tracing.passport_threshold is
// 0) and on.
func BenchmarkPassport(b *testing.B) {
	// The times are known (the loop's, the chain's): no clock read, as in
	// the gateway.
	run := func(b *testing.B, p *Passport) {
		b.ReportAllocs()
		var t int64
		for b.Loop() {
			t++
			p.MarkAt(PassStart, "", t)
			p.MarkAt(PassFilterStart, "auth", t)
			p.MarkAt(PassFilterEnd, "auth", t)
			p.MarkAt(PassRoute, "api", t)
			p.MarkAt(PassAttemptStart, "10.0.0.1:80", t)
			p.MarkAt(PassOriginConnected, "pooled", t)
			p.MarkAt(PassOriginFirstByte, "", t)
			p.MarkAt(PassAttemptEnd, "ok", t)
			p.MarkAt(PassResponseHead, "", t)
			p.MarkAt(PassFilterStart, "headers", t)
			p.MarkAt(PassFilterEnd, "headers", t)
			p.MarkAt(PassEnd, "", t)
			if p != nil {
				p.Reset()
			}
		}
	}
	b.Run("off", func(b *testing.B) { run(b, nil) })
	b.Run("on", func(b *testing.B) { run(b, &Passport{}) })
}
