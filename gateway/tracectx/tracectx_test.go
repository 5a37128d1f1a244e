package tracectx

import (
	"bytes"
	"strings"
	"testing"
)

const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		ok    bool
		flags byte
	}{
		{"valid sampled", valid, true, 0x01},
		{"valid not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, 0},
		{"version 00 unknown flags kept", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", true, 0xff},
		{"future version, 55 bytes", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, 0x01},
		{"future version with more fields", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-brings", true, 0x01},
		{"future version, no dash after flags", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false, 0},
		{"version 00 with more fields", valid + "-00", false, 0},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"version not hex", "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"uppercase version", "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"uppercase trace id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, 0},
		{"uppercase parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", false, 0},
		{"uppercase flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", false, 0},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, 0},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, 0},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false, 0},
		{"long trace id", "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01", false, 0},
		{"short parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", false, 0},
		{"one flag digit", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", false, 0},
		{"wrong separator", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false, 0},
		{"trace id not hex", "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01", false, 0},
		{"parent id not hex", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01", false, 0},
		{"flags not hex", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z", false, 0},
		{"spaces inside", "00-4bf92f3577b34da6a3ce929d0e0e4736 -00f067aa0ba902b7-01", false, 0},
		{"empty", "", false, 0},
		{"garbage", "hello", false, 0},
		{"future version, short", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := Parse([]byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("Parse(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			}
			if !ok {
				return
			}
			if p.Flags != tc.flags {
				t.Errorf("flags = %#x, want %#x", p.Flags, tc.flags)
			}
			got := string(Append(nil, p.TraceID, p.SpanID, p.Flags))
			if got[3:52] != tc.in[3:52] {
				t.Errorf("ids round trip: %q, sent %q", got, tc.in)
			}
		})
	}
}

func TestAppendRoundTrip(t *testing.T) {
	p, ok := Parse([]byte(valid))
	if !ok {
		t.Fatal("valid refused")
	}
	if got := string(Append(nil, p.TraceID, p.SpanID, p.Flags)); got != valid {
		t.Fatalf("Append = %q, want %q", got, valid)
	}
}

func TestIDSource(t *testing.T) {
	s := NewIDSource()
	seen := map[[16]byte]bool{}
	for range 1000 {
		id := s.TraceID()
		if id == ([16]byte{}) {
			t.Fatal("zero trace id")
		}
		if seen[id] {
			t.Fatal("repeated trace id")
		}
		seen[id] = true
		if s.SpanID() == ([8]byte{}) {
			t.Fatal("zero span id")
		}
	}
	// Two sources (two loops) do not make the same ids.
	a, b := NewIDSource().TraceID(), NewIDSource().TraceID()
	if a == b {
		t.Fatal("two sources made the same id")
	}
	tp := Append(nil, s.TraceID(), s.SpanID(), 0)
	if _, ok := Parse(tp); !ok || len(tp) != HeaderLen {
		t.Fatalf("own traceparent %q refused", tp)
	}
}

func TestSample(t *testing.T) {
	s := NewIDSource()
	count := func(ratio float64) int {
		n, th := 0, SampleThreshold(ratio)
		for range 10000 {
			if s.Sample(th) {
				n++
			}
		}
		return n
	}
	if n := count(0); n != 0 {
		t.Errorf("ratio 0 sampled %d", n)
	}
	if n := count(1); n < 9999 {
		t.Errorf("ratio 1 sampled %d of 10000", n)
	}
	if n := count(0.25); n < 2000 || n > 3000 {
		t.Errorf("ratio 0.25 sampled %d of 10000", n)
	}
}

func TestIDSourceAllocs(t *testing.T) {
	s := NewIDSource()
	buf := make([]byte, 0, HeaderLen)
	n := testing.AllocsPerRun(100, func() {
		buf = Append(buf[:0], s.TraceID(), s.SpanID(), 0)
		Parse(buf)
	})
	if n != 0 {
		t.Fatalf("%v allocations per id", n)
	}
}

func FuzzTraceparent(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-x"))
	f.Add([]byte("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, v []byte) {
		p, ok := Parse(v)
		if !ok {
			return
		}
		// Whatever was accepted is well formed, and what the gateway sends
		// on is a version 00 traceparent that parses back to the same ids.
		if len(v) < HeaderLen || bytes.HasPrefix(v, []byte("ff")) || strings.ToLower(string(v[:HeaderLen])) != string(v[:HeaderLen]) {
			t.Fatalf("accepted %q", v)
		}
		out := Append(nil, p.TraceID, p.SpanID, p.Flags)
		q, ok := Parse(out)
		if !ok || q != p || len(out) != HeaderLen {
			t.Fatalf("%q: sent %q, which parses as %v %v", v, out, q, ok)
		}
		if string(out[3:52]) != string(v[3:52]) {
			t.Fatalf("%q: ids changed: %q", v, out)
		}
	})
}

// BenchmarkTraceparent: what a request costs: a client's traceparent parsed
// (with its head), or a new trace id; the gateway's span id and its header.
func BenchmarkTraceparent(b *testing.B) {
	s := NewIDSource()
	var tp [HeaderLen]byte
	b.Run("parse", func(b *testing.B) {
		v := []byte(valid)
		for b.Loop() {
			Parse(v)
		}
	})
	b.Run("new-trace", func(b *testing.B) {
		for b.Loop() {
			Format(&tp, s.TraceID(), s.SpanID(), 0)
		}
	})
	b.Run("new-span", func(b *testing.B) {
		p, _ := Parse([]byte(valid))
		for b.Loop() {
			Format(&tp, p.TraceID, s.SpanID(), p.Flags)
		}
	})
}
