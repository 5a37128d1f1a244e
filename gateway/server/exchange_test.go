package server

import (
	"testing"

	"gozer/filters"
)

func TestPathOf(t *testing.T) {
	cases := []struct{ uri, want string }{
		{"/", "/"},
		{"/a/b?x=1", "/a/b"},
		{"/a?", "/a"},
		{"http://example.com/p/q?z", "/p/q"},
		{"http://example.com", "/"},

		{"*", "*"},
	}
	for _, c := range cases {
		if got := string(filters.PathOf([]byte(c.uri))); got != c.want {
			t.Errorf("filters.PathOf(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}

func TestIdempotentMethods(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true,
		"POST": false, "PATCH": false, "get": false,
	} {
		if got := isIdempotent([]byte(m)); got != want {
			t.Errorf("isIdempotent(%s) = %v, want %v", m, got, want)
		}
	}
}

func TestRequestIDsAreUniqueAndFixedWidth(t *testing.T) {
	l := &loop{}
	copy(l.idPrefix[:], "0123456789abcdef")
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := string(l.nextRequestID(nil))
		if len(id) != 32 || seen[id] {
			t.Fatalf("id %q: len %d, duplicate %v", id, len(id), seen[id])
		}
		seen[id] = true
	}
}
