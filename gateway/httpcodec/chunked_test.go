package httpcodec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// decodeAll feeds in to d in pieces of step bytes (0 = all at once), the way
// the core does: the decoder consumes everything it is given except after
// the end of the body. It returns the decoded data, whether the body ended,
// how many bytes of in the body took, and the error.
func decodeAll(d *ChunkedDecoder, in []byte, step int) (out []byte, done bool, used int, err error) {
	if step <= 0 {
		step = len(in) + 1
	}
	for start := 0; start < len(in) || start == 0; start += step {
		end := min(start+step, len(in))
		piece := in[start:end]
		var stop bool
		if out, used, done, stop, err = feedChunks(d, piece, out, used); stop {
			return out, done, used, err
		}
		if len(in) == 0 {
			break
		}
	}
	return out, false, used, nil
}

func TestChunkedValid(t *testing.T) {
	tests := []struct {
		name, in, want string
		rest           string // bytes after the body, not consumed
	}{
		{name: "simple", in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", want: "hello world"},
		{name: "empty body", in: "0\r\n\r\n", want: ""},
		{name: "upper hex", in: "A\r\n0123456789\r\n0\r\n\r\n", want: "0123456789"},
		{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", want: "hello"},
		{name: "extensions", in: "5;name=value\r\nhello\r\n6 ; a=\"q;\\\"x\" ;b\r\n world\r\n0;last\r\n\r\n", want: "hello world"},
		{name: "bws tab before ext", in: "5\t;x\r\nhello\r\n0\r\n\r\n", want: "hello"},
		{name: "trailers", in: "5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum:abc\r\n\r\n", want: "hello"},
		{name: "trailer empty value", in: "1\r\nx\r\n0\r\nX-Empty:\r\n\r\n", want: "x"},
		{name: "pipelined rest", in: "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", want: "abc", rest: "GET / HTTP/1.1\r\n"},
		{name: "binary data with crlf", in: "4\r\n\r\n\r\n\r\n0\r\n\r\n", want: "\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 2, 3, 5, 7} {
				var d ChunkedDecoder
				out, done, used, err := decodeAll(&d, []byte(tc.in), step)
				if err != nil || !done {
					t.Fatalf("step %d: done %v err %v", step, done, err)
				}
				if string(out) != tc.want {
					t.Fatalf("step %d: got %q want %q", step, out, tc.want)
				}
				if tc.in[used:] != tc.rest {
					t.Fatalf("step %d: rest %q want %q", step, tc.in[used:], tc.rest)
				}
				if !d.Done() {
					t.Fatal("Done false")
				}
				if n, _, dn, err := d.Next([]byte("more")); n != 0 || !dn || err != nil {
					t.Fatal("Next after done consumed")
				}
			}
		})
	}
}

func TestChunkedRejections(t *testing.T) {
	tests := []struct{ name, in string }{
		{"bad hex", "g\r\nx\r\n0\r\n\r\n"},
		{"empty size", "\r\nx\r\n0\r\n\r\n"},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n"},
		{"plus", "+5\r\nhello\r\n0\r\n\r\n"},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n"},
		{"trailing space no ext", "5 \r\nhello\r\n0\r\n\r\n"},
		{"space inside size", "1 0\r\n0123456789abcdef\r\n0\r\n\r\n"},
		{"overflow", "4000000000000001\r\nx"},
		{"overflow long", "ffffffffffffffffffff\r\nx"},
		{"size line too long", "5;" + strings.Repeat("a", MaxChunkLine) + "\r\nhello\r\n0\r\n\r\n"},
		{"leading zeros too long", strings.Repeat("0", MaxChunkLine+1) + "5\r\nhello\r\n0\r\n\r\n"},
		{"control in ext", "5;a\x00b\r\nhello\r\n0\r\n\r\n"},
		{"bare lf size", "5\nhello\r\n0\r\n\r\n"},
		{"bare lf ext", "5;x\nhello\r\n0\r\n\r\n"},
		{"cr without lf", "5\rhello\r\n0\r\n\r\n"},
		{"data too long", "5\r\nhelloX\r\n0\r\n\r\n"},
		{"missing crlf after data", "5\r\nhello0\r\n\r\n"},
		{"lf only after data", "5\r\nhello\n0\r\n\r\n"},
		{"bare lf last chunk", "0\n\r\n"},
		{"bare lf end", "0\r\n\n"},
		{"bare lf trailer", "0\r\nX: y\n\r\n"},
		{"trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n"},
		{"trailer space before colon", "0\r\nX : y\r\n\r\n"},
		{"trailer no colon", "0\r\nXy\r\n\r\n"},
		{"trailer empty name", "0\r\n: y\r\n\r\n"},
		{"trailer control", "0\r\nX: a\x01\r\n\r\n"},
		{"trailer too large", "0\r\nX: " + strings.Repeat("a", DefaultMaxTrailerBytes) + "\r\n\r\n"},
		{"trailer cr without lf", "0\r\nX: y\rZ\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1, 3} {
				var d ChunkedDecoder
				_, _, _, err := decodeAll(&d, []byte(tc.in), step)
				wantError(t, err, 400, CauseSmuggling)
				// Sticky.
				if _, _, _, err2 := d.Next([]byte("0\r\n\r\n")); err2 != err {
					t.Fatal("error not sticky")
				}
				resp := ChunkedDecoder{Response: true}
				_, _, _, err = decodeAll(&resp, []byte(tc.in), step)
				wantError(t, err, 502, CauseOriginBadResponse)
			}
		})
	}
}

func TestChunkedLimits(t *testing.T) {
	// Max chunk size itself is accepted (the data just is not there yet).
	var d ChunkedDecoder
	n, data, done, err := d.Next([]byte("4000000000000000\r\nab"))
	if err != nil || done || string(data) != "ab" || n != 20 {
		t.Fatalf("%d %q %v %v", n, data, done, err)
	}
	// A custom trailer limit.
	d = ChunkedDecoder{MaxTrailerBytes: 10}
	_, _, _, err = decodeAll(&d, []byte("0\r\nX: 12345\r\n\r\n"), 0)
	wantError(t, err, 400, CauseSmuggling)
	d.Reset()
	if d.MaxTrailerBytes != 10 {
		t.Fatal("Reset cleared MaxTrailerBytes")
	}
	if _, done, _, err := decodeAll(&d, []byte("0\r\nX: 1\r\n\r\n"), 0); !done || err != nil {
		t.Fatalf("%v %v", done, err)
	}
}

func TestChunkedOneSegmentPerCall(t *testing.T) {
	var d ChunkedDecoder
	in := []byte("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
	n, data, done, err := d.Next(in)
	if err != nil || done || string(data) != "abc" || n != 6 {
		t.Fatalf("first: %d %q %v %v", n, data, done, err)
	}
	n2, data, done, err := d.Next(in[n:])
	if err != nil || done || string(data) != "def" || n+n2 != 14 {
		t.Fatalf("second: %d %q %v %v", n2, data, done, err)
	}
	n3, data, done, err := d.Next(in[n+n2:])
	if err != nil || !done || data != nil || n+n2+n3 != len(in) {
		t.Fatalf("third: %d %q %v %v", n3, data, done, err)
	}
}

func TestAppendChunkHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{1, "1\r\n"}, {10, "a\r\n"}, {255, "ff\r\n"}, {4096, "1000\r\n"}, {1<<31 - 1, "7fffffff\r\n"}} {
		if got := string(AppendChunkHeader(nil, tc.n)); got != tc.want {
			t.Errorf("%d: %q want %q", tc.n, got, tc.want)
		}
	}
	// Encode then decode round trip.
	var enc []byte
	payload := bytes.Repeat([]byte("0123456789"), 100)
	for i := 0; i < len(payload); i += 333 {
		end := min(i+333, len(payload))
		enc = AppendChunkHeader(enc, end-i)
		enc = append(enc, payload[i:end]...)
		enc = append(enc, "\r\n"...)
	}
	enc = append(enc, FinalChunk...)
	var d ChunkedDecoder
	out, done, used, err := decodeAll(&d, enc, 0)
	if err != nil || !done || used != len(enc) || !bytes.Equal(out, payload) {
		t.Fatalf("round trip: %v %v %d", err, done, used)
	}
}

// feedChunks gives the decoder one piece of input until it is used up; stop is
// true when decoding ended (done, an error, or no progress).
func feedChunks(d *ChunkedDecoder, piece, out []byte, used int) (_ []byte, _ int, done, stop bool, err error) {
	for len(piece) > 0 {
		n, data, dn, e := d.Next(piece)
		out = append(out, data...)
		used += n
		if e != nil {
			return out, used, false, true, e
		}
		if dn {
			return out, used, true, true, nil
		}
		if n == 0 {
			return out, used, false, true, errors.New("no progress")
		}
		piece = piece[n:]
	}
	return out, used, false, false, nil
}
