package test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Response compression (origins.NAME.compression), decoded by curl (zlib,
// libbrotli and libzstd: implementations other than the ones Gozer encodes
// with) and checked byte for byte against the uncompressed answer.

// curlGet runs curl with --compressed and returns the decoded body and the
// response headers.
func curlGet(t *testing.T, url string, headers ...string) (body []byte, head http.Header) {
	t.Helper()
	args := []string{"-s", "--compressed", "--max-time", "20", "-D", "-", "-o", "/dev/stderr", url}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	cmd := exec.Command("curl", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, errb.String())
	}
	head = http.Header{}
	for _, line := range strings.Split(out.String(), "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok {
			head.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return errb.Bytes(), head
}

func compressingGozer(t *testing.T, opts string) (*gozer, *origin) {
	t.Helper()
	o := startOrigin(t, "compress")
	dir := newScriptDir(t)
	dir.write(t, "inbound", "plain.lua", luaFilter("plain", "inbound", 10, `ctx.req.header("X-Plain") ~= nil`, `ctx.no_compress()`))
	cfg := oneOrigin(map[string]string{"compression": opts}, o.Addr)
	cfg.Filters = &filtersConfig{Dir: string(dir)}
	return startGozer(t, cfg), o
}

// TestCompression: what is compressed, with which coding, and what is not.
func TestCompression(t *testing.T) {
	t.Parallel()
	g, o := compressingGozer(t, "{enabled: true, encodings: [gzip, br, zstd], min_size: 1KiB}")
	const page = "/bytes?n=200000&ct=text/html%3B%20charset=utf-8&etag=%22v1%22"
	want := func(path string) [32]byte {
		resp, err := http.Get(o.URL(path)) // the origin's own, uncompressed answer
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return sha256.Sum256(b)
	}
	for _, tc := range []struct {
		name, path, accept, coding string
		headers                    []string
	}{
		{"gzip", page, "gzip", "gzip", nil},
		{"brotli", page, "br", "br", nil},
		{"zstd", page, "zstd", "zstd", nil},
		{"the operator's order among equals", page, "zstd, br, gzip", "gzip", nil},
		{"q-values", page, "gzip;q=0.5, br;q=0.9", "br", nil},
		{"chunked from the origin", page + "&chunked=1", "gzip", "gzip", nil},
		// Up to 16 KiB, a gzip body is compressed in one shot (compress.oneShot):
		// decoded here by zlib (curl), as browsers do.
		{"gzip, a small body", "/bytes?n=2000&ct=application/json&etag=%22v1%22", "gzip", "gzip", nil},
		{"gzip, 16 KiB", "/bytes?n=16384&ct=application/json", "gzip", "gzip", nil},
		{"gzip, a small body chunked from the origin", "/bytes?n=5000&ct=application/json&chunked=1", "gzip", "gzip", nil},
		{"not accepted", page, "identity", "", nil},
		{"not a compressible type", "/bytes?n=200000", "gzip", "", nil},
		{"too small", "/bytes?n=500&ct=text/plain", "gzip", "", nil},
		{"no-transform", "/bytes?n=200000&ct=text/plain&cc=no-transform", "gzip", "", nil},
		{"a Lua filter said no", page, "gzip", "", []string{"X-Plain: 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, head := curlGet(t, g.URL(tc.path), append(tc.headers, "Accept-Encoding: "+tc.accept)...)
			if got := head.Get("Content-Encoding"); got != tc.coding {
				t.Fatalf("Content-Encoding %q, want %q (headers %v)", got, tc.coding, head)
			}
			if sha256.Sum256(body) != want(tc.path) {
				t.Fatalf("decoded body (%d bytes) differs from the origin's", len(body))
			}
			if tc.coding != "" {
				if head.Get("Content-Length") != "" {
					t.Errorf("a compressed answer kept the origin's Content-Length %s", head.Get("Content-Length"))
				}
				if !strings.Contains(head.Get("Vary"), "Accept-Encoding") {
					t.Errorf("Vary %q, want Accept-Encoding in it", head.Get("Vary"))
				}
				if strings.Contains(tc.path, "etag") && head.Get("ETag") != `W/"v1"` {
					t.Errorf("ETag %q, want the origin's made weak", head.Get("ETag"))
				}
			}
		})
	}
	t.Run("compressed by the origin already", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		resp, body := c.roundTrip(request("GET", "/bytes?n=200000&ct=text/plain&ce=x-origin-coded", "Accept-Encoding: gzip"))
		if resp.Header.Get("Content-Encoding") != "x-origin-coded" || len(body) != 200000 {
			t.Errorf("Content-Encoding %q, %d bytes; want the origin's coding and bytes untouched", resp.Header.Get("Content-Encoding"), len(body))
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		resp, _ := c.roundTrip(request("HEAD", page, "Accept-Encoding: gzip"))
		if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Content-Length") != "200000" {
			t.Errorf("HEAD: Content-Encoding %q, Content-Length %q; want the identity answer's head",
				resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Length"))
		}
	})
	t.Run("HTTP/1.0 client, small body", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /bytes?n=3000&ct=application/json HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
		resp, body := c.response("GET")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("HTTP/1.0: Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
		}
		r, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || len(got) != 3000 {
			t.Errorf("HTTP/1.0: %d bytes decoded (%v), want 3000", len(got), err)
		}
	})
	t.Run("HTTP/1.0 client", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET " + page + " HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
		resp, body := c.response("GET")
		if resp.Header.Get("Content-Encoding") != "gzip" || len(body) == 0 || len(body) >= 200000 {
			t.Errorf("HTTP/1.0: Content-Encoding %q, %d bytes; want gzip, close-delimited", resp.Header.Get("Content-Encoding"), len(body))
		}
	})
}

// TestCompressionNoFilters: without filters the response head is never parsed
// by fasthttp; the compressing relay edits the lines it kept (Vary, ETag,
// Content-Encoding) and the client gets the same head as with filters.
func TestCompressionNoFilters(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "compress-nofilters")
	cfg := oneOrigin(map[string]string{"compression": "{enabled: true, encodings: [gzip], min_size: 1KiB}"}, o.Addr)
	cfg.Filters = &filtersConfig{Dir: ""}
	g := startGozer(t, cfg)
	for _, n := range []int{2000, 200000} { // one shot, streamed
		path := fmt.Sprintf("/bytes?n=%d&ct=application/json&etag=%%22v1%%22", n)
		body, head := curlGet(t, g.URL(path), "Accept-Encoding: gzip")
		if head.Get("Content-Encoding") != "gzip" || head.Get("Vary") != "Accept-Encoding" || head.Get("ETag") != `W/"v1"` ||
			head.Get("Content-Length") != "" || head.Get("Transfer-Encoding") != "chunked" {
			t.Errorf("n=%d: head %v", n, head)
		}
		if len(body) != n || !bytes.Equal(body[:251*2], patternBuf[:251*2]) {
			t.Errorf("n=%d: %d bytes decoded, not the origin's", n, len(body))
		}
	}
}

// TestCompressionStreams: a compressed answer the origin sends piece by piece
// reaches the client piece by piece (each relay is flushed), not at its end:
// the origin sends the first half, then waits 30 s; the client decodes that
// half long before.
func TestCompressionStreams(t *testing.T) {
	t.Parallel()
	g, _ := compressingGozer(t, "{enabled: true, types: [text/event-stream], min_size: 1}")
	c := dialRaw(t, g.ProxyAddr)
	c.send(request("GET", "/slow-body?n=20000&delay=30s&ct=text/event-stream", "Accept-Encoding: gzip"))
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("the gzip header did not come with the first piece: %v", err)
	}
	half := make([]byte, 10000)
	if _, err := io.ReadFull(gz, half); err != nil {
		t.Fatalf("the first half of the body, sent 30 s before the rest, did not arrive decoded: %v", err)
	}
}
