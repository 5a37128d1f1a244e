package httpcodec

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"gozer/gateway/internal/fuzzseed"
)

// requestSeeds are the interesting request heads: every smuggling case of the
// table tests plus valid ones. They are also committed under
// testdata/fuzz/FuzzRequestParse (regenerate with GOZER_WRITE_CORPUS=1).
var requestSeeds = []string{
	req("GET / HTTP/1.1", "Host: a"),
	req("GET /a?b=c HTTP/1.1", "Host: example.com", "User-Agent: ua", "Cookie: a=b; c", "Accept: */*"),
	req("POST /p HTTP/1.1", "Host: a", "Content-Length: 5"),
	req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"),
	req("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: chunked"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5"),
	req("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 5"),
	req("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 6"),
	req("POST / HTTP/1.1", "Host: a", "Content-Length: +5"),
	req("POST / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999999"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, x"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked\t"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:  chunked"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: identity"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
	req("POST / HTTP/1.0", "Host: a", "Transfer-Encoding: chunked"),
	req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding : chunked"),
	req("POST / HTTP/1.1", "Host: a", "X: y", " Transfer-Encoding: chunked"),
	req("POST / HTTP/1.1", "Host: a", "X: y\x00"),
	"POST / HTTP/1.1\r\nHost: a\nTransfer-Encoding: chunked\r\n\r\n",
	req("GET / HTTP/1.1", "Host: a", "Host: b"),
	req("GET / HTTP/1.1"),
	req("GET http://a/x HTTP/1.1", "Host: a"),
	req("GET http://a/x HTTP/1.1", "Host: b"),
	req("GET https://b.example HTTP/1.0"),
	req("OPTIONS * HTTP/1.1", "Host: a"),
	req("GET /a/../b/%2e/c#f?x=/../ HTTP/1.1", "Host: a"),
	req("GET /a..b/.%2E./%2e%2e%2e HTTP/1.1", "Host: a"),
	req("GET / HTTP/1.1", "Host: a", "Connection: X-A, traceparent, Host", "X-A: 1", "traceparent: x"),
	req("GET / HTTP/1.1", "Host: a", "Authorization: a", "authorization: b"),
	req("GET * HTTP/1.1", "Host: a"),
	req("CONNECT a:443 HTTP/1.1", "Host: a:443"),
	req("GET / HTTP/2.0", "Host: a"),
	req("GET / HTTP/1.0", "Connection: keep-alive"),
	req("PUT /u HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 3"),
	req("PUT /u HTTP/1.1", "Host: a", "Expect: 200-ok", "Content-Length: 3"),
	req("GET / HTTP/1.1", "Host: a", "Connection: close, X-Foo", "X-Foo: 1", "Keep-Alive: 5", "Proxy-Authorization: x"),
	req("GET / HTTP/1.1", "Host: a", "X-Forwarded-For: 1.1.1.1", "Via: 1.0 x", "X-Request-Id: r"),
	"\r\n" + req("GET / HTTP/1.1", "Host: a"),
	req("GET /ws HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket"),
	req("POST /g HTTP/1.1", "Host: a", "Connection: TE", "TE: trailers, gzip;q=0.5", "Trailer: grpc-status", "Transfer-Encoding: chunked"),
	req("GET / HTTP/1.1", "Host: a", "TE: gzip", "TE: ,trailers,"),
}

// chunkedSeeds are chunked bodies: valid ones with extensions and trailers
// and the rejected ones.
var chunkedSeeds = []string{
	"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"0\r\n\r\n",
	"5;name=value\r\nhello\r\n6 ; a=\"q;x\" ;b\r\n world\r\n0;last\r\n\r\n",
	"5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum:abc\r\n\r\n",
	"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
	"5 \r\nhello\r\n0\r\n\r\n",
	"4000000000000001\r\nx",
	"5\nhello\r\n0\r\n\r\n",
	"5\r\nhelloX\r\n0\r\n\r\n",
	"0\r\nX: y\r\n z\r\n\r\n",
	"0\r\nX : y\r\n\r\n",
	"0x5\r\nhello\r\n0\r\n\r\n",
	"-5\r\nhello\r\n0\r\n\r\n",
	"2\r\nhi\r\n0\r\nGrpc-Status:  0 \r\nContent-Length: 5\r\nhost:x\r\nIf-Match: *\r\nProxy-X: 1\r\nX-Long-Name-Over-Twenty-Four: v\r\n\r\n",
	"0\r\nX-A:\t\r\nx-a: 2\r\n\r\n",
}

func FuzzRequestParse(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, head []byte, step uint8) {
		lim := Limits{MaxRequestLine: 1024, MaxHeaderBytes: 4096, MaxHeaders: 64}
		checkRequestLineOf(t, head, lim.MaxRequestLine)
		n, err := scanWhole(head, lim, 0)
		n2, err2 := scanWhole(head, lim, int(step))
		if n != n2 || !sameError(err, err2) {
			t.Fatalf("split scan differs: %d %v vs %d %v", n, err, n2, err2)
		}
		if err != nil {
			checkError(t, err, 400, 414, 431)
			return
		}
		if n == 0 {
			return
		}
		var r Request
		if err := r.Parse(head[:n]); err != nil {
			if err == errMalformed {
				t.Fatalf("our validation accepted a head fasthttp refuses: %q", head[:n])
			}
			checkError(t, err, 400, 417, 505)
			return
		}
		checkAccepted(t, head[:n], &r)
	})
}

func scanWhole(in []byte, lim Limits, step int) (int, error) {
	var s HeadScanner
	if step <= 0 {
		return s.Scan(in, lim)
	}
	for end := step; ; end += step {
		end = min(end, len(in))
		n, err := s.Scan(in[:end], lim)
		if err != nil || n > 0 || end == len(in) {
			return n, err
		}
	}
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	var ea, eb *Error
	return errors.As(a, &ea) && errors.As(b, &eb) && ea.Status == eb.Status && ea.Cause == eb.Cause
}

func checkError(t *testing.T, err error, statuses ...int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	for _, s := range statuses {
		if e.Status == s {
			return
		}
	}
	t.Fatalf("unexpected status %d (%v)", e.Status, err)
}

// naiveHeaders splits an accepted head into lower-cased names and values
// with a deliberately simple parser.
func naiveHeaders(head []byte) (first []byte, names, values []string) {
	lines := bytes.Split(bytes.TrimSuffix(head, []byte("\r\n\r\n")), []byte("\r\n"))
	for len(lines) > 0 && len(lines[0]) == 0 {
		lines = lines[1:]
	}
	first = lines[0]
	for _, l := range lines[1:] {
		i := bytes.IndexByte(l, ':')
		names = append(names, string(bytes.ToLower(l[:i])))
		values = append(values, string(bytes.Trim(l[i+1:], " \t")))
	}
	return first, names, values
}

func count(names []string, name string) int {
	c := 0
	for _, n := range names {
		if n == name {
			c++
		}
	}
	return c
}

func checkAccepted(t *testing.T, head []byte, r *Request) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(head, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("accepted a bare LF")
	}
	if bytes.Contains(head, []byte("\r\n ")) || bytes.Contains(head, []byte("\r\n\t")) {
		t.Fatal("accepted obs-fold")
	}
	first, names, _ := naiveHeaders(head)
	cl, te := count(names, "content-length"), count(names, "transfer-encoding")
	switch r.Framing {
	case FramingChunked:
		if te != 1 || cl != 0 || r.HTTP10 {
			t.Fatalf("chunked with te=%d cl=%d http10=%v", te, cl, r.HTTP10)
		}
	case FramingLength:
		if cl != 1 || te != 0 || r.ContentLength < 0 {
			t.Fatalf("length with te=%d cl=%d", te, cl)
		}
	case FramingNone:
		if cl != 0 || te != 0 {
			t.Fatalf("no framing with te=%d cl=%d", te, cl)
		}
	default:
		t.Fatalf("request framing %v", r.Framing)
	}
	if h := count(names, "host"); h > 1 || (h == 0 && !r.HTTP10) {
		t.Fatalf("%d host headers accepted", h)
	}
	parts := bytes.Split(first, []byte(" "))
	if len(parts) != 3 {
		t.Fatalf("request line %q", first)
	}
	if string(r.Header.Method()) != string(parts[0]) || string(r.Header.RequestURI()) != string(parts[1]) {
		t.Fatalf("method/target %q %q from %q", r.Header.Method(), r.Header.RequestURI(), first)
	}

	// Differential: when net/http also accepts the head, it must see the same
	// framing (a disagreement between two parsers is what smuggling is made of).
	if hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head))); err == nil {
		want := int64(0)
		switch r.Framing {
		case FramingChunked:
			want = -1
		case FramingLength:
			want = r.ContentLength
		}
		if hr.ContentLength != want || (len(hr.TransferEncoding) > 0) != (r.Framing == FramingChunked) {
			t.Fatalf("net/http framing cl=%d te=%v, ours %v/%d", hr.ContentLength, hr.TransferEncoding, r.Framing, r.ContentLength)
		}
		if hr.Close == r.KeepAlive {
			t.Fatalf("net/http close=%v, ours keepAlive=%v", hr.Close, r.KeepAlive)
		}
	}

	// The forwarded request re-parses to the same method, target and framing.
	fi := ForwardInfo{ClientIP: []byte("192.0.2.1"), RequestID: []byte("fz"), Via: "1.1 gozer", DefaultHost: []byte("origin")}
	out := AppendForwardRequest(nil, r, &fi)
	n, err := scanWhole(out, Limits{MaxRequestLine: 1 << 20, MaxHeaderBytes: 1 << 20}, 0)
	if err != nil || n != len(out) {
		t.Fatalf("forwarded request does not scan: %d %v\n%q", n, err, out)
	}
	var r2 Request
	if err := r2.Parse(out); err != nil {
		t.Fatalf("forwarded request rejected: %v\n%q", err, out)
	}
	wantTarget := string(parts[1])
	if _, rest, ok := splitAbsolute(parts[1]); ok {
		wantTarget = string(rest)
		if len(rest) == 0 || rest[0] != '/' {
			wantTarget = "/" + wantTarget
		}
	}
	if string(r2.Header.Method()) != string(parts[0]) || string(r2.Header.RequestURI()) != wantTarget {
		t.Fatalf("forwarded %q %q, want %q %q", r2.Header.Method(), r2.Header.RequestURI(), parts[0], wantTarget)
	}
	wantFraming, wantCL := r.Framing, r.ContentLength
	if wantFraming == FramingNone {
		switch string(parts[0]) {
		case "POST", "PUT", "PATCH":
			wantFraming = FramingLength
		}
	}
	if r2.Framing != wantFraming || r2.ContentLength != wantCL || r2.HTTP10 || !r2.KeepAlive || r2.ExpectContinue {
		t.Fatalf("forwarded framing %v/%d keepAlive %v, want %v/%d\n%q", r2.Framing, r2.ContentLength, r2.KeepAlive,
			wantFraming, wantCL, out)
	}
	_, fnames, fvalues := naiveHeaders(out)
	for _, hop := range []string{"connection", "keep-alive", "te", "upgrade", "expect", "proxy-connection"} {
		if count(fnames, hop) != 0 {
			t.Fatalf("hop-by-hop %s forwarded:\n%q", hop, out)
		}
	}
	// A Trailer goes only before a chunked body, whose trailers follow it,
	// naming tokens whose fields may pass.
	for i, n := range fnames {
		if n != "trailer" {
			continue
		}
		if r.Framing != FramingChunked {
			t.Fatalf("Trailer forwarded with framing %v:\n%q", r.Framing, out)
		}
		for _, name := range strings.Split(fvalues[i], ", ") {
			if !isToken([]byte(name)) || ForbiddenTrailer([]byte(name)) {
				t.Fatalf("announced %q:\n%q", name, out)
			}
		}
	}
	if count(fnames, "host") != 1 || count(fnames, "content-length")+count(fnames, "transfer-encoding") > 1 {
		t.Fatalf("bad forwarded framing headers:\n%q", out)
	}
	// Trailers reaching the client: the only hop-by-hop fields that may go
	// are the gateway's own "TE: trailers" and "Connection: TE", together.
	fi.Trailers = true
	out = AppendForwardRequest(nil, r, &fi)
	_, fnames, fvalues = naiveHeaders(out)
	for _, hop := range []string{"keep-alive", "upgrade", "expect", "proxy-connection"} {
		if count(fnames, hop) != 0 {
			t.Fatalf("hop-by-hop %s forwarded:\n%q", hop, out)
		}
	}
	te, conn := count(fnames, "te"), count(fnames, "connection")
	if te > 1 || te != conn {
		t.Fatalf("%d TE and %d Connection forwarded:\n%q", te, conn, out)
	}
	for i, n := range fnames {
		if n == "te" && fvalues[i] != "trailers" || n == "connection" && fvalues[i] != "TE" {
			t.Fatalf("forwarded %s: %q\n%q", n, fvalues[i], out)
		}
	}
}

// responseSeeds are origin response heads, good and bad.
var responseSeeds = []string{
	req("HTTP/1.1 200 OK", "Content-Length: 5"),
	req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
	req("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"),
	req("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"),
	req("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"),
	req("HTTP/1.1 204 No Content", "Content-Length: 3"),
	req("HTTP/1.1 304 Not Modified"),
	req("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: upgrade"),
	req("HTTP/1.1 200 OK", "Set-Cookie: a=b", "Via: 1.1 x", "Connection: X-A", "X-A: 1"),
	req("HTTP/1.1 200"),
	req("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: X-A", "Trailer: grpc-status, X-A, Via, x-sum", "Trailer: Date"),
	req("HTTP/1.1 200 OK", "Trailer: ,, a b, grpc-status", "Transfer-Encoding: chunked"),
}

func FuzzResponseParse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, head []byte, headReq bool) {
		s := HeadScanner{Response: true}
		n, err := s.Scan(head, Limits{MaxHeaderBytes: 4096})
		if err != nil {
			checkError(t, err, 502)
			return
		}
		if n == 0 {
			return
		}
		var r Response
		if err := r.Parse(head[:n], headReq); err != nil {
			// fasthttp refuses a Trailer header naming a forbidden field
			// (Content-Length, Host ...): a 502 is fine for that.
			if err == errRespMalformed && !bytes.Contains(bytes.ToLower(head[:n]), []byte("trailer")) {
				t.Fatalf("our validation accepted a head fasthttp refuses: %q", head[:n])
			}
			checkError(t, err, 502)
			return
		}
		_, names, _ := naiveHeaders(head[:n])
		cl, te := count(names, "content-length"), count(names, "transfer-encoding")
		if cl+te > 1 || (r.Framing == FramingChunked && te != 1) || (r.Framing == FramingLength && cl != 1) ||
			(r.Framing == FramingUntilClose && (cl+te != 0 || r.KeepAlive)) {
			t.Fatalf("framing %v keepAlive %v with cl=%d te=%d", r.Framing, r.KeepAlive, cl, te)
		}
		// What we write for the client parses back to the same framing.
		ri := ResponseInfo{RequestID: []byte("fz"), Via: "1.1 gozer", Chunked: r.Framing == FramingChunked || r.Framing == FramingUntilClose}
		out := AppendClientResponse(nil, &r, &ri)
		// The lazy path (no fasthttp parse) writes the same headers, in the
		// origin's order and case instead of fasthttp's.
		var lz Response
		if err := lz.ParseLazy(head[:n], headReq); err != nil {
			t.Fatalf("ParseLazy refused what Parse accepted: %v", err)
		}
		lazyOut := AppendClientResponse(nil, &lz, &ri)
		if a, b := headerMultiset(t, out), headerMultiset(t, lazyOut); a != b {
			t.Fatalf("lazy and parsed responses differ:\n%s\n---\n%s", a, b)
		}
		var r2 Response
		if err := r2.Parse(out, headReq); err != nil {
			t.Fatalf("client response rejected: %v\n%q", err, out)
		}
		wantFraming := r.Framing
		if wantFraming == FramingUntilClose {
			wantFraming = FramingChunked
		}
		if r2.Status != r.Status || r2.Framing != wantFraming || (wantFraming == FramingLength && r2.ContentLength != r.ContentLength) {
			t.Fatalf("client response %d %v/%d, want %d %v/%d\n%q", r2.Status, r2.Framing, r2.ContentLength,
				r.Status, wantFraming, r.ContentLength, out)
		}
		// Trailers reaching the client: the Trailer header announces tokens
		// whose fields may pass, never an empty one, never a forbidden one,
		// and the head still parses.
		if ri.Chunked {
			ri.Trailers = true
			for _, resp := range []*Response{&r, &lz} {
				out := AppendClientResponse(nil, resp, &ri)
				_, names, values := naiveHeaders(out)
				for i, n := range names {
					if n != "trailer" {
						continue
					}
					for _, name := range strings.Split(values[i], ", ") {
						if !isToken([]byte(name)) || ForbiddenTrailer([]byte(name)) {
							t.Fatalf("announced %q:\n%q", name, out)
						}
					}
				}
				if err := r2.Parse(out, headReq); err != nil {
					t.Fatalf("client response with its Trailer rejected: %v\n%q", err, out)
				}
			}
			ri.Trailers = false
		}
		// What the compressing relay does to a head (SetHeader) comes out the
		// same whether the head was parsed or kept lazy.
		for _, h := range [][2]string{{"Vary", "Accept-Encoding"}, {"Content-Encoding", "gzip"}, {"ETag", `W/"x"`}} {
			r.SetHeader(h[0], []byte(h[1]))
			lz.SetHeader(h[0], []byte(h[1]))
		}
		if a, b := headerMultiset(t, AppendClientResponse(nil, &r, &ri)), headerMultiset(t, AppendClientResponse(nil, &lz, &ri)); a != b {
			t.Fatalf("lazy and parsed responses differ after SetHeader:\n%s\n---\n%s", a, b)
		}
	})
}

func FuzzChunkedDecoder(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s), uint64(0))
		f.Add([]byte(s), uint64(0x9e3779b97f4a7c15))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		// 1. Any split gives the same result as one shot.
		var d1, d2 ChunkedDecoder
		out1, done1, used1, err1 := decodeAll(&d1, in, 0)
		out2, done2, used2, err2 := decodeSplit(&d2, in, seed)
		if !sameError(err1, err2) || done1 != done2 || (err1 == nil && used1 != used2) || !bytes.Equal(out1, out2) {
			t.Fatalf("split decode differs: %q %v %d %v vs %q %v %d %v", out1, done1, used1, err1, out2, done2, used2, err2)
		}
		if err1 != nil {
			checkError(t, err1, 400)
		}
		if !bytes.Equal(d1.Trailer(), d2.Trailer()) {
			t.Fatalf("split decode keeps another trailer: %q vs %q", d1.Trailer(), d2.Trailer())
		}
		if done1 {
			checkTrailer(t, d1.Trailer())
		}
		// 2. Encoding in as a payload round-trips.
		enc := encodeChunked(in, seed)
		var d3 ChunkedDecoder
		out3, done3, used3, err3 := decodeSplit(&d3, enc, seed>>7)
		if err3 != nil || !done3 || used3 != len(enc) || !bytes.Equal(out3, in) {
			t.Fatalf("round trip: %v %v %d/%d\n%q", err3, done3, used3, len(enc), enc)
		}
	})
}

type rng uint64

func (r *rng) next() uint64 {
	*r ^= *r << 13
	*r ^= *r >> 7
	*r ^= *r << 17
	return uint64(*r)
}

// decodeSplit is decodeAll with piece sizes drawn from seed (1 to 16 bytes).
func decodeSplit(d *ChunkedDecoder, in []byte, seed uint64) (out []byte, done bool, used int, err error) {
	r := rng(seed | 1)
	for start := 0; start < len(in); {
		end := min(start+1+int(r.next()%16), len(in))
		piece := in[start:end]
		start = end
		var stop bool
		if out, used, done, stop, err = feedChunks(d, piece, out, used); stop {
			return out, done, used, err
		}
	}
	return out, false, used, nil
}

// checkTrailer: a decoded trailer section is field lines; what
// AppendTrailerFields keeps of it holds no forbidden field, decodes again as
// a trailer section, and is kept whole a second time.
func checkTrailer(t *testing.T, tr []byte) {
	t.Helper()
	if len(tr) > DefaultMaxTrailerBytes {
		t.Fatalf("trailer over its bound: %d bytes", len(tr))
	}
	for _, line := range strings.SplitAfter(string(tr), "\r\n") {
		if line == "" {
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("trailer line %q in %q", line, tr)
		}
	}
	out := AppendTrailerFields(nil, tr, nil)
	for _, line := range strings.SplitAfter(string(out), "\r\n") {
		if name, _, _ := strings.Cut(line, ":"); line != "" && ForbiddenTrailer([]byte(name)) {
			t.Fatalf("forbidden field %q passed on from %q", name, tr)
		}
	}
	var d ChunkedDecoder
	if _, done, _, err := decodeAll(&d, []byte("0\r\n"+string(out)+"\r\n"), 0); !done || err != nil {
		t.Fatalf("passed-on trailer %q does not decode: %v", out, err)
	}
	if again := AppendTrailerFields(nil, d.Trailer(), nil); !bytes.Equal(again, out) {
		t.Fatalf("passed on twice: %q then %q", out, again)
	}
}

// encodeChunked chunks payload with sizes, extensions and trailers drawn from seed.
func encodeChunked(payload []byte, seed uint64) []byte {
	r := rng(seed | 1)
	var enc []byte
	for len(payload) > 0 {
		n := min(1+int(r.next()%64), len(payload))
		enc = AppendChunkHeader(enc, n)
		if r.next()%4 == 0 {
			enc = enc[:len(enc)-2]
			enc = append(enc, " ;ext=\"v\"\r\n"...)
		}
		enc = append(enc, payload[:n]...)
		enc = append(enc, "\r\n"...)
		payload = payload[n:]
	}
	enc = append(enc, "0"...)
	if r.next()%2 == 0 {
		enc = append(enc, ";last"...)
	}
	enc = append(enc, "\r\n"...)
	if r.next()%2 == 0 {
		enc = append(enc, "X-Checksum: abc\r\nExpires:\r\n"...)
	}
	return append(enc, "\r\n"...)
}

// TestWriteSeedCorpus writes the seeds to testdata/fuzz when
// GOZER_WRITE_CORPUS=1, in the "go test fuzz v1" format.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("GOZER_WRITE_CORPUS") != "1" {
		t.Skip("set GOZER_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(target string, i int, args ...any) { fuzzseed.Write(t, target, i, args...) }
	for i, s := range requestSeeds {
		write("FuzzRequestParse", i, []byte(s), uint8(i%5))
	}
	for i, s := range chunkedSeeds {
		write("FuzzChunkedDecoder", i, []byte(s), uint64(i)*0x9e3779b97f4a7c15)
	}
	for i, s := range responseSeeds {
		write("FuzzResponseParse", i, []byte(s), i%2 == 1)
	}
}

// headerMultiset renders a response head's status line and headers, with names
// lower-cased and lines sorted, for comparing heads that differ only in order/case.
func headerMultiset(t *testing.T, head []byte) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(head), "\r\n\r\n"), "\r\n")
	status := lines[0]
	var hdrs []string
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		if value = strings.TrimSpace(value); value == "" {
			continue // fasthttp drops empty special headers (Content-Encoding:), the raw path keeps them
		}
		hdrs = append(hdrs, strings.ToLower(name)+":"+value)
	}
	slices.Sort(hdrs)
	return status + "\n" + strings.Join(hdrs, "\n")
}

// checkRequestLineOf: what RequestLineOf finds of any input is well-formed and
// within the limit; and when Parse accepts a head, it finds the same method
// and target.
func checkRequestLineOf(t *testing.T, head []byte, max int) {
	m, target := RequestLineOf(head, max)
	for _, c := range m {
		if !isTchar(c) {
			t.Fatalf("RequestLineOf(%q): method %q is not a token", head, m)
		}
	}
	for _, c := range target {
		if class[c]&classTarget == 0 {
			t.Fatalf("RequestLineOf(%q): target %q has a byte a target may not", head, target)
		}
	}
	if len(m)+len(target) > max || (m == nil && target != nil) {
		t.Fatalf("RequestLineOf(%q, %d) = %q, %q", head, max, m, target)
	}
	var r Request
	if _, err := (&HeadScanner{}).Scan(head, Limits{MaxRequestLine: max, MaxHeaderBytes: 1 << 20}); err == nil && r.Parse(head) == nil {
		if string(m) != string(r.Header.Method()) || string(target) != string(r.Header.RequestURI()) {
			t.Fatalf("RequestLineOf(%q) = %q %q; Parse read %q %q", head, m, target, r.Header.Method(), r.Header.RequestURI())
		}
	}
}
