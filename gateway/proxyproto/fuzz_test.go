package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"os"
	"testing"

	pp "github.com/pires/go-proxyproto"

	"gozer/gateway/internal/fuzzseed"
)

// fuzzSeeds are real headers (the library's writer, the spec's examples)
// with a request behind them, and junk (every refused case of the tables).
// They are also committed under testdata/fuzz/FuzzParse (regenerate with
// GOZER_WRITE_CORPUS=1).
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range append(libraryCases(t), specCases...) {
		seeds = append(seeds, append(bytes.Clone(c.hdr), request...))
	}
	for _, c := range badCases {
		seeds = append(seeds, []byte(c.in))
	}
	return append(seeds,
		[]byte{},
		[]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"),
		[]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\nPROXY TCP4 9.9.9.9 5.6.7.8 80 443\r\n"),
		v2(0x21, 0x11, "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x50\x01\xbb"+"\x03\x00\x04\x00\x00\x00\x00"),
	)
}

// FuzzParse checks, for any bytes:
//   - no panic; n within buf; an error comes with n == 0 and wraps one kind;
//   - "wait for more" only below MaxHeaderLen bytes;
//   - a header is decided by its own bytes: Parse(buf[:n]) is the same, and
//     every shorter prefix asks for more (the pre-check never refuses the
//     start of a header it accepts);
//   - where the library reads a TCP client address the blocking way, Parse
//     agrees on address and length, or refuses for a reason it documents
//     that the library does not check.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		n, src, err := Parse(buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("n = %d for %d bytes", n, len(buf))
		}
		if err != nil {
			if n != 0 || src.IsValid() {
				t.Fatalf("error %v with (%d, %v)", err, n, src)
			}
			kinds := 0
			for _, k := range []error{ErrNotProxy, ErrMalformed, ErrTooLong, ErrUnsupported} {
				if errors.Is(err, k) {
					kinds++
				}
			}
			if kinds != 1 {
				t.Fatalf("error %q wraps %d kinds", err, kinds)
			}
		}
		if n == 0 && err == nil && len(buf) >= MaxHeaderLen {
			t.Fatalf("still waiting after %d bytes", len(buf))
		}
		if n > 0 {
			n2, src2, err2 := Parse(buf[:n])
			if n2 != n || src2 != src || err2 != nil {
				t.Fatalf("Parse(buf[:%d]) = (%d, %v, %v), want (%d, %v, nil)", n, n2, src2, err2, n, src)
			}
			for _, k := range prefixLens(n) {
				if kn, ksrc, kerr := Parse(buf[:k]); kn != 0 || ksrc.IsValid() || kerr != nil {
					t.Fatalf("prefix of %d/%d bytes: (%d, %v, %v), want (0, invalid, nil)", k, n, kn, ksrc, kerr)
				}
			}
		}
		checkAgainstLibrary(t, buf, n, src, err)
	})
}

// prefixLens lists the proper prefix lengths to try for an n-byte header:
// all of them for short ones, the edges and a stride for long v2 headers.
func prefixLens(n int) []int {
	var ks []int
	for k := 0; k < n; k++ {
		if n <= 256 || k < 40 || k >= n-40 || k%61 == 0 {
			ks = append(ks, k)
		}
	}
	return ks
}

// checkAgainstLibrary runs the library on the same bytes with a buffer large
// enough that it never peeks short, and compares.
func checkAgainstLibrary(t *testing.T, buf []byte, n int, src netip.AddrPort, err error) {
	t.Helper()
	if len(buf) == 0 {
		return
	}
	br := bufio.NewReaderSize(bytes.NewReader(buf), len(buf))
	h, libErr := pp.Read(br)
	used := len(buf) - br.Buffered()

	if err == nil && src.IsValid() {
		// We handed a TCP client to the caller: the library must agree.
		if libErr != nil {
			t.Fatalf("Parse accepted %d bytes as %v, library: %v", n, src, libErr)
		}
		lib, ok := tcpAddrPort(h)
		if !ok || lib != src || used != n {
			t.Fatalf("Parse (%d, %v), library (%d, %v, %v)", n, src, used, lib, ok)
		}
		return
	}
	if libErr != nil || h.Command != pp.PROXY {
		return
	}
	lib, ok := tcpAddrPort(h)
	if !ok {
		return
	}
	// The library found a TCP client where Parse did not. Only our documented
	// extra checks may explain that.
	if err == nil {
		t.Fatalf("library read %v from %d bytes; Parse (%d, invalid, nil)", lib, used, n)
	}
	switch {
	case errors.Is(err, ErrTooLong) && buf[0] == '\r':
		// Our v2 cap is below the spec's 65535.
	case errors.Is(err, ErrNotProxy) && !bytes.HasPrefix(buf, v1Prefix) && !bytes.HasPrefix(buf, pp.SIGV2):
		// "PROXY" then not a space: the library only checks five bytes.
	case errors.Is(err, ErrMalformed) && buf[0] == 'P' && checkV1Fields(buf[:used-2]) != nil:
		// Extra fields, signed or zero-led ports, zones.
	case errors.Is(err, ErrMalformed) && buf[0] == '\r':
		if _, tlvErr := h.TLVs(); tlvErr == nil {
			t.Fatalf("library read %v; Parse: %v", lib, err)
		}
	default:
		t.Fatalf("library read %v from %d bytes; Parse: %v", lib, used, err)
	}
}

func tcpAddrPort(h *pp.Header) (netip.AddrPort, bool) {
	s, _, ok := h.TCPAddrs()
	if !ok || s == nil {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(s.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(s.Port)), ok
}

// TestWriteSeedCorpus writes the seeds to testdata/fuzz/FuzzParse when
// GOZER_WRITE_CORPUS=1, in the "go test fuzz v1" format.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("GOZER_WRITE_CORPUS") != "1" {
		t.Skip("set GOZER_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	for i, s := range fuzzSeeds(t) {
		fuzzseed.Write(t, "FuzzParse", i, s)
	}
}
