package httpcodec

import "testing"

// TestBodyReaderWant: how much of its connection a body can still take, so
// that a reader peeks no further (what follows is the next request).
func TestBodyReaderWant(t *testing.T) {
	for _, tc := range []struct {
		name    string
		framing Framing
		length  int64
		feed    string
		want    int64
	}{
		{"length, nothing read", FramingLength, 10, "", 10},
		{"length, part read", FramingLength, 10, "abcd", 6},
		{"length, all read, the next request after it", FramingLength, 4, "abcdGET / HTTP/1.1", 0},
		{"no body", FramingNone, 0, "", 0},
		{"chunked: its framing says as it goes", FramingChunked, 0, "", -1},
		{"chunked, done", FramingChunked, 0, "0\r\n\r\n", 0},
		{"until the close", FramingUntilClose, 0, "abc", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r BodyReader
			r.Reset(tc.framing, tc.length, false)
			buf := []byte(tc.feed)
			for len(buf) > 0 && !r.Done() {
				n, _, err := r.Next(buf)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				buf = buf[n:]
			}
			if got := r.Want(); got != tc.want {
				t.Errorf("Want() = %d, want %d", got, tc.want)
			}
		})
	}
}
