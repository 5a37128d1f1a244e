package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// pattern is byte i of what demo-origin's /bytes sends: i*7 mod 251.
func pattern(i int64) byte { return byte(i % 251 * 7 % 251) }

// patternBuf starts at offset 0 and is long enough for any 32 KiB slice starting
// at an offset below 251.
var patternBuf = func() []byte {
	b := make([]byte, 251*140)
	for i := range b {
		b[i] = pattern(int64(i))
	}
	return b
}()

// patternReader yields n bytes of the pattern: a request body of any size that
// costs no memory.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	m := int(min(int64(len(p)), r.n-r.off, 32<<10))
	start := r.off % 251
	copy(p, patternBuf[start:start+int64(m)])
	r.off += int64(m)
	return m, nil
}

// patternSHA is the sha256 of the first n bytes of the pattern, in hex.
func patternSHA(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, &patternReader{n: n})
	return hex.EncodeToString(h.Sum(nil))
}

// checkPattern reads r to its end and checks that it is exactly the first want bytes
// of the pattern. It returns how many bytes it read.
func checkPattern(r io.Reader, want int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		for done := 0; done < n; {
			m := min(n-done, 32<<10)
			start := off % 251
			if !bytes.Equal(buf[done:done+m], patternBuf[start:start+int64(m)]) {
				for i := range m {
					if buf[done+i] != pattern(off+int64(i)) {
						return off + int64(i), fmt.Errorf("byte %d is %d, want %d", off+int64(i), buf[done+i], pattern(off+int64(i)))
					}
				}
			}
			done += m
			off += int64(m)
		}
		if err == io.EOF {
			if off != want {
				return off, fmt.Errorf("got %d bytes, want %d", off, want)
			}
			return off, nil
		}
		if err != nil {
			return off, fmt.Errorf("after %d bytes: %w", off, err)
		}
		if off > want {
			return off, fmt.Errorf("got more than the %d bytes wanted", want)
		}
	}
}
