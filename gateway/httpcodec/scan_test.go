package httpcodec

import (
	"strings"
	"testing"
)

func TestScannerIncremental(t *testing.T) {
	head := req("GET /x HTTP/1.1", "Host: a", "X-Long: "+strings.Repeat("v", 300))
	pipelined := head + "POST /next HTTP/1.1\r\nHost: a\r\n"
	for _, step := range []int{1, 2, 3, 7, 64, len(pipelined)} {
		var s HeadScanner
		var n int
		var err error
		for end := step; ; end += step {
			if end > len(pipelined) {
				end = len(pipelined)
			}
			n, err = s.Scan([]byte(pipelined[:end]), Limits{})
			if err != nil || n > 0 || end == len(pipelined) {
				break
			}
		}
		if err != nil || n != len(head) {
			t.Fatalf("step %d: n=%d err=%v, want %d", step, n, err, len(head))
		}
		// Scan again: same answer, pipelined bytes still not consumed.
		if n2, err := s.Scan([]byte(pipelined), Limits{}); n2 != n || err != nil {
			t.Fatalf("rescan: %d %v", n2, err)
		}
	}
}

func TestScannerLimits(t *testing.T) {
	lim := Limits{MaxRequestLine: 64, MaxHeaderBytes: 256}
	line := func(n int) string { return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1")) + " HTTP/1.1" }
	tests := []struct {
		name   string
		input  string
		n      int // expected head length when accepted
		status int
		cause  Class
	}{
		{name: "line at limit", input: req(line(64), "Host: a"), n: len(req(line(64), "Host: a"))},
		{name: "line over limit", input: req(line(65), "Host: a"), status: 414, cause: CauseURITooLong},
		{name: "line over limit without crlf", input: "GET /" + strings.Repeat("a", 70), status: 414, cause: CauseURITooLong},
		{name: "line at limit with pending cr", input: line(64) + "\r"},
		{name: "head at limit", input: req("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat("b", 256-32)),
			n: 256},
		{name: "head over limit", input: req("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat("b", 256-31)),
			status: 431, cause: CauseHeadersTooLarge},
		{name: "head over limit without end", input: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", 300),
			status: 431, cause: CauseHeadersTooLarge},
		{name: "many small headers over limit", input: "GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", 50),
			status: 431, cause: CauseHeadersTooLarge},
		{name: "leading crlf not counted", input: "\r\n\r\n" + req("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat("b", 256-32)),
			n: 260},
		{name: "three leading crlf", input: "\r\n\r\n\r\nGET", status: 400, cause: CauseBadRequest},
		{name: "bare lf first", input: "\nGET / HTTP/1.1\r\n", status: 400, cause: CauseSmuggling},
		{name: "bare lf header", input: "GET / HTTP/1.1\r\nHost: a\n", status: 400, cause: CauseSmuggling},
		{name: "bare lf end", input: "GET / HTTP/1.1\r\nHost: a\r\n\n", status: 400, cause: CauseSmuggling},
		{name: "incomplete", input: "GET / HTTP/1.1\r\nHost: a\r\n\r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Whole input, then byte by byte: same outcome.
			for _, step := range []int{len(tc.input), 1} {
				var s HeadScanner
				var n int
				var err error
				for end := step; end <= len(tc.input); end += step {
					n, err = s.Scan([]byte(tc.input[:end]), lim)
					if err != nil || n > 0 {
						break
					}
				}
				if tc.status != 0 {
					wantError(t, err, tc.status, tc.cause)
					continue
				}
				if err != nil || n != tc.n {
					t.Fatalf("step %d: n=%d err=%v, want n=%d", step, n, err, tc.n)
				}
			}
		})
	}
}

func TestScannerEarly414(t *testing.T) {
	// The 414 comes as soon as the line is too long, not when the head ends.
	var s HeadScanner
	lim := Limits{MaxRequestLine: 100, MaxHeaderBytes: 1 << 20}
	buf := []byte("GET /")
	for len(buf) <= 100 {
		if _, err := s.Scan(buf, lim); err != nil {
			t.Fatalf("early error at %d bytes: %v", len(buf), err)
		}
		buf = append(buf, 'a')
	}
	_, err := s.Scan(buf, lim)
	wantError(t, err, 414, CauseURITooLong)
	// Sticky until Reset.
	_, err = s.Scan([]byte("GET / HTTP/1.1\r\n\r\n"), lim)
	wantError(t, err, 414, CauseURITooLong)
	s.Reset()
	if n, err := s.Scan([]byte("GET / HTTP/1.1\r\n\r\n"), lim); n == 0 || err != nil {
		t.Fatalf("after Reset: %d %v", n, err)
	}
}

func TestScannerResponse(t *testing.T) {
	s := HeadScanner{Response: true}
	lim := Limits{MaxRequestLine: 10, MaxHeaderBytes: 128}
	head := "HTTP/1.1 200 A reason phrase longer than ten\r\nContent-Length: 0\r\n\r\n"
	if n, err := s.Scan([]byte(head), lim); n != len(head) || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	s.Reset()
	if !s.Response {
		t.Fatal("Reset cleared Response")
	}
	_, err := s.Scan([]byte("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 200)), lim)
	wantError(t, err, 502, CauseOriginBadResponse)
	s.Reset()
	_, err = s.Scan([]byte("HTTP/1.1 200 OK\nX: y\r\n\r\n"), lim)
	wantError(t, err, 502, CauseOriginBadResponse)
}

func TestScannerMaxHeaders(t *testing.T) {
	fields := func(n int) string { return strings.Repeat("A: b\r\n", n) }
	tests := []struct {
		name     string
		response bool
		max      int // Limits.MaxHeaders (0: the default, 100)
		input    string
		tooMany  bool // else accepted, or more bytes needed
	}{
		{name: "at the limit", max: 4, input: "GET / HTTP/1.1\r\n" + fields(4) + "\r\n"},
		{name: "one over", max: 4, input: "GET / HTTP/1.1\r\n" + fields(5) + "\r\n", tooMany: true},
		{name: "one over, before the head ends", max: 4, input: "GET / HTTP/1.1\r\n" + fields(5), tooMany: true},
		{name: "the one over not ended yet", max: 4, input: "GET / HTTP/1.1\r\n" + fields(4) + "A: b"},
		{name: "leading empty lines are not fields", max: 4, input: "\r\n\r\nGET / HTTP/1.1\r\n" + fields(4) + "\r\n"},
		{name: "default at its limit", input: "GET / HTTP/1.1\r\n" + fields(DefaultMaxHeaders) + "\r\n"},
		{name: "default one over", input: "GET / HTTP/1.1\r\n" + fields(DefaultMaxHeaders+1) + "\r\n", tooMany: true},
		{name: "responses are not counted", response: true, max: 4, input: "HTTP/1.1 200 OK\r\n" + fields(50) + "\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := Limits{MaxHeaders: tc.max}
			for _, step := range []int{len(tc.input), 1} { // whole, then byte by byte: same outcome
				s := HeadScanner{Response: tc.response}
				var n int
				var err error
				for end := step; end <= len(tc.input); end += step {
					if n, err = s.Scan([]byte(tc.input[:end]), lim); err != nil || n > 0 {
						break
					}
				}
				switch {
				case tc.tooMany:
					wantError(t, err, 431, CauseHeadersTooLarge)
					if e := err.(*Error); !strings.Contains(e.Reason, "too many header fields") {
						t.Fatalf("step %d: reason %q, want it to say too many header fields", step, e.Reason)
					}
				case err != nil:
					t.Fatalf("step %d: %v, want no error", step, err)
				case strings.HasSuffix(tc.input, "\r\n\r\n") && n != len(tc.input):
					t.Fatalf("step %d: head of %d bytes, want all %d", step, n, len(tc.input))
				}
			}
		})
	}
}
