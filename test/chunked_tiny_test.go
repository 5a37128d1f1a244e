package test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// chunkCountOrigin answers each request with the body it received and, in
// X-Chunks, how many chunks that body came in (it reads the chunked framing
// itself: net/http would hide it).
func chunkCountOrigin(t testing.TB) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			body, chunks, err := readChunkedRequest(br)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Chunks: %d\r\n\r\n", len(body), chunks)
			_, _ = c.Write(body)
		}
	})
}

// readChunkedRequest reads a request head and its chunked body.
func readChunkedRequest(br *bufio.Reader) (body []byte, chunks int, err error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, 0, err
		}
		if line == "\r\n" {
			break
		}
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, 0, err
		}
		size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 64)
		if err != nil {
			return nil, 0, err
		}
		if size == 0 {
			for { // the trailer section
				if line, err = br.ReadString('\n'); err != nil || line == "\r\n" {
					return body, chunks, err
				}
			}
		}
		chunks++
		piece := make([]byte, size+2)
		if _, err := io.ReadFull(br, piece); err != nil {
			return nil, 0, err
		}
		body = append(body, piece[:size]...)
	}
}

// TestChunkedBodyTinyChunks: a request body sent a byte per chunk (HTTP/1.1)
// or a byte per DATA frame (HTTP/2) reaches the origin whole and in order, in
// few chunks: the small pieces one read brings are gathered into one chunk,
// written once. A write per piece took 12 s for 2 million one-byte chunks
// and held the loop's other clients for up to half a second.
func TestChunkedBodyTinyChunks(t *testing.T) {
	t.Parallel()
	// request_buffer 0: the body goes to the origin as it comes (a buffered
	// one would leave as one chunk whatever its pieces).
	cfg := oneOrigin(map[string]string{"request_buffer": "0"}, chunkCountOrigin(t))
	cfg.H2C = true
	g := startGozer(t, cfg)
	want := func(n int) []byte { return bytes.Repeat([]byte("0123456789"), n/10) }

	t.Run("HTTP/1.1", func(t *testing.T) {
		const n = 500_000
		body := want(n)
		var wire bytes.Buffer
		wire.WriteString("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, b := range body {
			wire.WriteString("1\r\n")
			wire.WriteByte(b)
			wire.WriteString("\r\n")
		}
		wire.WriteString("0\r\n\r\n")
		c := dialRaw(t, g.ProxyAddr)
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		go func() { _, _ = c.Write(wire.Bytes()) }()
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		checkTinyChunks(t, resp.StatusCode, resp.Header.Get("X-Chunks"), got, body, n)
	})

	t.Run("HTTP/2", func(t *testing.T) {
		const n = 30_000 // within the stream's first window
		body := want(n)
		h := dialH2(t, g.ProxyAddr)
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("POST", "/up"), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		var frames bytes.Buffer
		fr := http2.NewFramer(&frames, nil)
		for i := range body {
			_ = fr.WriteData(1, false, body[i:i+1])
		}
		_ = fr.WriteData(1, true, nil)
		go func() { _, _ = h.c.Write(frames.Bytes()) }()
		status, got := "", 0
		var chunks string
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			_ = h.c.SetReadDeadline(deadline)
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %d body bytes: %v", got, err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				status, chunks = f.PseudoValue("status"), headerValue(f, "x-chunks")
			case *http2.DataFrame:
				got += len(f.Data())
			}
			if f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().StreamID == 1 {
				break
			}
		}
		code, _ := strconv.Atoi(status)
		checkTinyChunks(t, code, chunks, make([]byte, got), make([]byte, n), n)
	})
}

// headerValue is the value of field name in f ("" when absent).
func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// checkTinyChunks checks an echo of n one-byte pieces: status 200, the body
// whole, the origin's chunk count far below n.
func checkTinyChunks(t *testing.T, status int, chunks string, got, want []byte, n int) {
	t.Helper()
	if status != 200 || !bytes.Equal(got, want) {
		t.Fatalf("status %d, %d body bytes back of %d (equal: %v)", status, len(got), len(want), bytes.Equal(got, want))
	}
	k, err := strconv.Atoi(chunks)
	t.Logf("%d one-byte pieces reached the origin in %d chunks", n, k)
	if err != nil || k > n/100 {
		t.Errorf("%d one-byte pieces reached the origin in %q chunks: want them gathered", n, chunks)
	}
}
