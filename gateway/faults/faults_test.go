package faults

import (
	"math"
	"testing"
	"time"

	"gozer/filters"
	"gozer/gateway/config"
)

type hdrs map[string]string

func (h hdrs) Peek(name string) []byte {
	v, ok := h[name]
	if !ok {
		return nil
	}
	return []byte(v)
}

// seq is a deterministic Rand: a xorshift.
type seq struct{ s uint32 }

func (r *seq) Uint32() uint32 {
	r.s ^= r.s << 13
	r.s ^= r.s >> 17
	r.s ^= r.s << 5
	return r.s
}

func TestMatch(t *testing.T) {
	set, err := Compile([]config.FaultRule{
		{Name: "hdr", Origin: "api", Header: "X-Chaos", HeaderValue: "on", Percent: 100, Abort: 503},
		{Name: "path", PathPrefix: "/slow", Percent: 100, Delay: time.Second},
		{Origin: "api", Percent: 0, Reset: true},
		{Name: "host", Host: "*.example.com", Percent: 100, SlowBody: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		origin string
		host   string
		path   string
		h      hdrs
		want   string // rule name; "" none
	}{
		{"header and origin", "api", "h", "/", hdrs{"X-Chaos": "on"}, "hdr"},
		{"other header value", "api", "h", "/", hdrs{"X-Chaos": "off"}, ""},
		{"header on another origin", "web", "h", "/", hdrs{"X-Chaos": "on"}, ""},
		{"path prefix", "web", "h", "/slow/x", nil, "path"},
		{"first match wins", "api", "h", "/slow", hdrs{"X-Chaos": "on"}, "hdr"},
		{"0 percent never", "api", "h", "/", nil, ""},
		{"wildcard host", "web", "API.Example.com", "/", nil, "host"},
		{"the wildcard's own domain is not its subdomain", "web", "example.com", "/", nil, ""},
	}
	rnd := &seq{s: 1}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inj, ok := set.Match(tc.origin, []byte(tc.host), []byte(tc.path), tc.h, rnd)
			if ok != (tc.want != "") || inj.Rule != tc.want {
				t.Fatalf("matched %v rule %q, want %q", ok, inj.Rule, tc.want)
			}
		})
	}
	if names := set.Rules(); names[2].Name != "rule2" {
		t.Fatalf("an unnamed rule is named by position: %q", names[2].Name)
	}
}

// TestMatchShare: p % of N draws within ±6 binomial standard deviations.
func TestMatchShare(t *testing.T) {
	for _, p := range []float64{1, 10, 50, 99.5} {
		set, _ := Compile([]config.FaultRule{{Percent: p, Abort: 500}})
		rnd := &seq{s: 12345}
		const n = 100000
		hits := 0
		for i := 0; i < n; i++ {
			if _, ok := set.Match("o", nil, nil, hdrs{}, rnd); ok {
				hits++
			}
		}
		mean, sd := n*p/100, math.Sqrt(n*p/100*(1-p/100))
		if math.Abs(float64(hits)-mean) > 6*sd {
			t.Errorf("%v %%: %d of %d, want %v ± %v", p, hits, n, mean, 6*sd)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, r := range []config.FaultRule{
		{Percent: 100},
		{Percent: 101, Abort: 503},
		{Percent: 10, Abort: 99},
		{Percent: 10, Abort: 503, Reset: true},
		{Percent: 10, Delay: -time.Second},
		{Percent: 10, Abort: 503, HeaderValue: "x"},
	} {
		if _, err := Compile([]config.FaultRule{r}); err == nil {
			t.Errorf("%+v compiled", r)
		}
	}
	if s, err := Compile(nil); s != nil || err != nil {
		t.Fatalf("no rules: %v %v, want nil nil", s, err)
	}
}

func TestLive(t *testing.T) {
	l := NewLive()
	cfg, _ := Compile([]config.FaultRule{{Percent: 1, Abort: 503}})
	if l.Active(cfg) != cfg || l.Overridden() {
		t.Fatal("without an override the config's set is in service")
	}
	l.Set(nil)
	if l.Active(cfg) != nil || !l.Overridden() {
		t.Fatal("an empty override wins over the config's")
	}
	l.Clear()
	if l.Active(cfg) != cfg {
		t.Fatal("Clear goes back to the config's")
	}
	l.Count(&filters.Injection{Delay: time.Second, Abort: 503})
	l.Count(&filters.Injection{SlowBody: 10})
	c := l.Counts()
	if c["delay"] != 1 || c["abort"] != 1 || c["slow_body"] != 1 || c["reset"] != 0 {
		t.Fatalf("counts %v", c)
	}
}

// BenchmarkActiveNone is the request path's cost when nothing is configured.
func BenchmarkActiveNone(b *testing.B) {
	l := NewLive()
	for i := 0; i < b.N; i++ {
		if l.Active(nil) != nil {
			b.Fatal("a rule")
		}
	}
}
