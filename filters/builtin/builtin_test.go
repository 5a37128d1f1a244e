package builtin

import (
	"fmt"
	"testing"

	"gozer/filters"
	"gozer/gateway/httpcodec"
)

func TestServerTiming(t *testing.T) {
	tests := []struct {
		name       string
		start, now int64
		want       string
	}{
		{"milliseconds with two decimals", 1_000_000_000, 1_012_345_678, "gozer;dur=12.35"},
		{"under a microsecond", 5, 5, "gozer;dur=0.00"},
		{"long", 0, 61_000_000_000, "gozer;dur=61000.00"},
	}
	for _, lazy := range []bool{false, true} { // a parsed head, or the unparsed one (LazyResponseHead)
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s lazy=%v", tc.name, lazy), func(t *testing.T) {
				resp := &httpcodec.Response{}
				parse := resp.Parse
				if lazy {
					parse = resp.ParseLazy
				}
				if err := parse([]byte("HTTP/1.1 200 OK\r\nServer-Timing: origin;dur=1\r\nContent-Length: 0\r\n\r\n"), false); err != nil {
					t.Fatal(err)
				}
				now := tc.now
				ctx := &filters.Context{Start: tc.start, Resp: resp, Clock: func() int64 { return now }}
				f := ServerTiming{}
				if !f.ShouldFilter(ctx) {
					t.Fatal("ShouldFilter false with a response")
				}
				f.Apply(ctx)
				if got := string(resp.Get("Server-Timing")); got != tc.want {
					t.Fatalf("Server-Timing %q, want %q", got, tc.want)
				}
			})
		}
	}
	if (ServerTiming{}).ShouldFilter(&filters.Context{}) {
		t.Fatal("ShouldFilter true without a response")
	}
	for _, f := range All() {
		if _, ok := f.(filters.SyncFilter); !ok {
			if _, ok := f.(filters.AsyncFilter); !ok {
				t.Errorf("%s is neither sync nor async", f.Name())
			}
		}
	}
}
