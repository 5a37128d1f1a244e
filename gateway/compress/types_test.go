package compress

import (
	"strings"
	"testing"
)

func TestCompressible(t *testing.T) {
	html := []string{"text/html"}
	text := []string{"text/*"}
	defaults := DefaultTypes()
	tests := []struct {
		ct    string
		types []string
		want  bool
	}{
		{"text/html", html, true},
		{"text/html; charset=utf-8", html, true},
		{"TEXT/HTML;Charset=UTF-8", html, true},
		{" text/html ", html, true},
		{"text/html;", html, true},
		{"text/html", []string{"Text/HTML"}, true},
		{"text/htmlx", html, false},
		{"text/htm", html, false},
		{"text/plain", html, false},
		{"text/html garbage", html, false},
		{"text/html,application/json", html, false},

		{"text/plain", text, true},
		{"TEXT/CSS; charset=utf-8", text, true},
		{"text/", text, false},
		{"text", text, false},
		{"textual/plain", text, false},
		{"application/text", text, false},

		{"application/json", defaults, true},
		{"application/json; charset=utf-8", defaults, true},
		{"application/problem+json", defaults, true},
		{"application/javascript", defaults, true},
		{"image/svg+xml", defaults, true},
		{"text/event-stream", defaults, true},
		{"application/json+x", defaults, false},
		{"image/png", defaults, false},
		{"image/webp", defaults, false},
		{"application/octet-stream", defaults, false},
		{"application/gzip", defaults, false},
		{"font/woff2", defaults, false},
		{"video/mp4", defaults, false},

		{"", defaults, false},
		{" ", defaults, false},
		{"/html", defaults, false},
		{"text/html", nil, false},
		{"text/html", []string{"*/*"}, false}, // refused by CheckType; matches nothing here
	}
	for _, tc := range tests {
		if got := Compressible([]byte(tc.ct), tc.types); got != tc.want {
			t.Errorf("Compressible(%q, %v) = %v, want %v", tc.ct, tc.types, got, tc.want)
		}
	}
}

func TestCompressibleDoesNotAllocate(t *testing.T) {
	ct := []byte("Application/JSON; charset=utf-8")
	types := DefaultTypes()
	var got bool
	allocs := testing.AllocsPerRun(100, func() { got = Compressible(ct, types) })
	if allocs != 0 {
		t.Errorf("Compressible allocates %.1f times per call", allocs)
	}
	if !got {
		t.Error("Compressible = false, want true")
	}
}

func TestCheckTypes(t *testing.T) {
	if err := CheckTypes(DefaultTypes()); err != nil {
		t.Errorf("CheckTypes(DefaultTypes()) = %v", err)
	}
	if err := CheckTypes(nil); err == nil {
		t.Error("CheckTypes(nil) = nil, want an error")
	}
	for _, bad := range []string{"", "html", "*/*", "*/html", "text/", "/html", "text/html; charset=utf-8", "text/ html", "text/*html", "te*xt/html", "te*/*", "te xt/html"} {
		err := CheckType(bad)
		if err == nil {
			t.Errorf("CheckType(%q) = nil, want an error", bad)
			continue
		}
		if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] || !strings.Contains(msg, "media type") {
			t.Errorf("CheckType(%q) = %q: want a lower-case message naming the media type", bad, msg)
		}
	}
}
