package httpcodec

import (
	"bytes"
	"strings"
	"testing"
)

var bothRewrites = PathPolicy{DecodeUnreserved: true, MergeSlashes: true}

func TestNormalizePath(t *testing.T) {
	decodeOnly := PathPolicy{DecodeUnreserved: true}
	mergeOnly := PathPolicy{MergeSlashes: true}
	for _, tc := range []struct {
		target string
		p      PathPolicy
		want   string // the request's target after NormalizePath
		line   string // the request line forwarded to the origin ("" : GET want HTTP/1.1)
	}{
		{"/api/v1", bothRewrites, "/api/v1", ""},
		{"//api///v1//", bothRewrites, "/api/v1/", ""},
		{"/%61pi/%7Euser/%2D%2e%5f%41%30", bothRewrites, "/api/~user/-._A0", ""},
		{"/%61%70%69/", bothRewrites, "/api/", ""},
		// Reserved and non-ASCII escapes stay escaped: "%2F" is not "/" to
		// routes; their hex digits are written in upper case (RFC 3986 6.2.2.1).
		{"/a%2Fb/%2f%25%20%3F%C3%A9", bothRewrites, "/a%2Fb/%2F%25%20%3F%C3%A9", ""},
		{"/a%2fb/%c3%a9?q=%2f", bothRewrites, "/a%2Fb/%C3%A9?q=%2f", ""},
		{"/a%2fb", mergeOnly, "/a%2fb", ""},
		// "%252e" is "%2e" once decoded: left as it is (one decoding only).
		{"/%252e%252e/x", bothRewrites, "/%252e%252e/x", ""},
		{"/%%2f", bothRewrites, "/%%2F", ""},
		// A broken escape is passed, not guessed at; nor is one decoded into
		// a new escape with a stray "%" ("%", "A", "0" is not "%A0").
		{"/%6/%zz/%", bothRewrites, "/%6/%zz/%", ""},
		{"/%%410/%4%31/%%7e", bothRewrites, "/%%410/%4%31/%~", ""},
		// The query is the origin's: neither merged nor decoded.
		{"//a?u=http://x//y&v=%61", bothRewrites, "/a?u=http://x//y&v=%61", ""},
		{"/?//", bothRewrites, "/?//", ""},
		{"//", bothRewrites, "/", ""},
		{"//a//%61", decodeOnly, "//a//a", ""},
		{"//a//%61", mergeOnly, "/a/%61", ""},
		{"//a//%61", PathPolicy{}, "//a//%61", ""},
		{"http://h//a//%62?q=//", bothRewrites, "http://h/a/b?q=//", "GET /a/b?q=// HTTP/1.1"},
		{"http://h?q=//", bothRewrites, "http://h?q=//", "GET /?q=// HTTP/1.1"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			var r Request
			if err := r.Parse([]byte(req("GET "+tc.target+" HTTP/1.1", "Host: h"))); err != nil {
				t.Fatal(err)
			}
			changed := r.NormalizePath(tc.p)
			if got := string(r.Header.RequestURI()); got != tc.want || changed != (tc.want != tc.target) {
				t.Fatalf("target %q (changed %v), want %q", got, changed, tc.want)
			}
			line := tc.line
			if line == "" {
				line = "GET " + tc.want + " HTTP/1.1"
			}
			fwd := string(AppendForwardRequest(nil, &r, &ForwardInfo{}))
			if !strings.HasPrefix(fwd, line+"\r\n") {
				t.Fatalf("forwarded %q, want the request line %q", fwd, line)
			}
		})
	}
}

// TestNormalizePathMarked: Parse marks the targets NormalizePath may change
// (the others cost it nothing), and a marked one with nothing to change is
// left as it is.
func TestNormalizePathMarked(t *testing.T) {
	for _, tc := range []struct {
		target  string
		marked  bool
		changed bool
	}{
		{"/a/b.c?d=e", false, false},
		{"/a%20b", true, false},
		{"/a//b", true, true},
		{"/a?b=//", true, false},
		{"*", false, false},
	} {
		var r Request
		method := "GET "
		if tc.target == "*" {
			method = "OPTIONS "
		}
		if err := r.Parse([]byte(req(method+tc.target+" HTTP/1.1", "Host: h"))); err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		if r.PathToNormalize != tc.marked {
			t.Errorf("%s: PathToNormalize %v, want %v", tc.target, r.PathToNormalize, tc.marked)
		}
		if changed := r.NormalizePath(bothRewrites); changed != tc.changed || !changed && string(r.Header.RequestURI()) != tc.target {
			t.Errorf("%s: changed %v to %q", tc.target, changed, r.Header.RequestURI())
		}
	}
}

func TestNormalizePathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var r Request
	head := []byte(req("GET //api//%61?q=1 HTTP/1.1", "Host: h"))
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.Parse(head); err != nil {
			t.Fatal(err)
		}
		r.NormalizePath(bothRewrites)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}

// FuzzNormalizePath checks, on any target Parse accepts, that the normal form
// is accepted again and is a fixed point, that the query is untouched, that
// no "//" is left in the path, and that it means what the target meant: the
// same bytes once every escape is decoded and slashes merged.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/a/b", "//a///b/", "/%61%2F%2e%7e/%", "/a?b=//%61", "http://h//x%41?q", "*",
		"/%252e%252e/", "/a;b//c%3B", "/%C3%A9//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		method := "GET "
		if target == "*" {
			method = "OPTIONS "
		}
		var r Request
		if strings.ContainsAny(target, "\r\n ") || r.Parse([]byte(req(method+target+" HTTP/1.1", "Host: h"))) != nil {
			return
		}
		r.NormalizePath(bothRewrites)
		out := string(r.Header.RequestURI())
		var again Request
		if err := again.Parse([]byte(req(method+out+" HTTP/1.1", "Host: h"))); err != nil {
			t.Fatalf("normal form %q of %q refused: %v", out, target, err)
		}
		if again.NormalizePath(bothRewrites) {
			t.Fatalf("normal form %q of %q is not a fixed point: %q", out, target, again.Header.RequestURI())
		}
		inPath, inQuery := splitPath(target)
		outPath, outQuery := splitPath(out)
		if inQuery != outQuery {
			t.Fatalf("query %q became %q", inQuery, outQuery)
		}
		if strings.Contains(outPath, "//") {
			t.Fatalf("%q left %q", target, outPath)
		}
		if a, b := unescapeAll(mergeAll(inPath)), unescapeAll(outPath); a != b {
			t.Fatalf("%q (%q) and its normal form %q (%q) differ", target, a, out, b)
		}
	})
}

// splitPath splits a target into its path (after an absolute-form's
// authority) and its query.
func splitPath(target string) (path, query string) {
	if i := strings.Index(target, "://"); i >= 0 && !strings.HasPrefix(target, "/") {
		target = target[i+3:]
		j := strings.IndexAny(target, "/?")
		if j < 0 {
			return "", ""
		}
		target = target[j:]
	}
	if q := strings.IndexByte(target, '?'); q >= 0 {
		return target[:q], target[q:]
	}
	return target, ""
}

func mergeAll(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// decodeAll decodes every well-formed escape, as an origin would.
func unescapeAll(p string) string {
	var b bytes.Buffer
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if d, ok := unhex(p[i+1], p[i+2]); ok {
				b.WriteByte(d)
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
