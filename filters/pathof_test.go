package filters

import (
	"bytes"
	"strings"
	"testing"

	"gozer/gateway/httpcodec"
)

// FuzzPathOf: for any target Parse accepts, the path routes and filters read
// (PathOf of the normalised target) is the path the origin is sent (the
// forwarded request line's, up to its "?"): a split of the two is a way past
// a route or a filter.
func FuzzPathOf(f *testing.F) {
	for _, s := range []string{"/a/b?c", "//a//b", "/%61?x=/y", "http://h?/api/x", "http://h//a?b", "https://h", "http://h/", "*",
		"http://h?//x/y", "/?/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		method := "GET "
		if target == "*" {
			method = "OPTIONS "
		}
		var r httpcodec.Request
		if strings.ContainsAny(target, "\r\n ") || r.Parse([]byte(method+target+" HTTP/1.1\r\nHost: h\r\n\r\n")) != nil {
			return
		}
		r.NormalizePath(httpcodec.PathPolicy{DecodeUnreserved: true, MergeSlashes: true})
		routed := PathOf(r.Header.RequestURI())
		line, _, _ := bytes.Cut(httpcodec.AppendForwardRequest(nil, &r, &httpcodec.ForwardInfo{}), []byte("\r\n"))
		sent := bytes.Split(line, []byte(" "))[1] // the target: no SP in it (appendTarget escapes it)
		if q := bytes.IndexByte(sent, '?'); q >= 0 {
			sent = sent[:q]
		}
		if !bytes.Equal(routed, sent) {
			t.Fatalf("target %q: routes see %q, the origin gets %q", target, routed, sent)
		}
	})
}
