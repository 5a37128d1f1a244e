package httpcodec

import "testing"

// A typical ~400-byte browser request.
var benchRequest = []byte("GET /api/v1/catalog/titles?page=2&sort=popular HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://www.example.com/browse\r\n" +
	"Cookie: session=3f9a7c1e2b; theme=dark\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n")

var benchResponse = []byte("HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 5120\r\n" +
	"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
	"Cache-Control: private, max-age=0\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Server: origin\r\n" +
	"X-Origin-Id: api-7\r\n" +
	"\r\n")

func BenchmarkScanParseForward(b *testing.B) {
	var (
		s   HeadScanner
		r   Request
		dst = make([]byte, 0, 4096)
		fi  = ForwardInfo{ClientIP: []byte("203.0.113.7"), Proto: "http", RequestID: []byte("0c3b1f0e-5c1d-4e0a-9d5e-1b2c3d4e5f60"), Via: "1.1 gozer"}
		lim = Limits{MaxRequestLine: 8 << 10, MaxHeaderBytes: 32 << 10}
	)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	for b.Loop() {
		s.Reset()
		n, err := s.Scan(benchRequest, lim)
		if err != nil || n != len(benchRequest) {
			b.Fatal(n, err)
		}
		r.Reset()
		if err := r.Parse(benchRequest[:n]); err != nil {
			b.Fatal(err)
		}
		dst = AppendForwardRequest(dst[:0], &r, &fi)
	}
}

func BenchmarkResponseParse(b *testing.B) {
	var (
		s   HeadScanner
		r   Response
		lim Limits
	)
	s.Response = true
	b.ReportAllocs()
	b.SetBytes(int64(len(benchResponse)))
	for b.Loop() {
		s.Reset()
		n, err := s.Scan(benchResponse, lim)
		if err != nil || n != len(benchResponse) {
			b.Fatal(n, err)
		}
		r.Reset()
		if err := r.Parse(benchResponse[:n], false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientResponse(b *testing.B) {
	var r Response
	if err := r.Parse(benchResponse, false); err != nil {
		b.Fatal(err)
	}
	ri := ResponseInfo{RequestID: []byte("0c3b1f0e-5c1d-4e0a-9d5e-1b2c3d4e5f60"), Via: "1.1 gozer"}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendClientResponse(dst[:0], &r, &ri)
	}
}

func BenchmarkChunkedDecoder(b *testing.B) {
	body := make([]byte, 0, 70000)
	chunk := make([]byte, 4096)
	for i := 0; i < 16; i++ {
		body = AppendChunkHeader(body, len(chunk))
		body = append(body, chunk...)
		body = append(body, "\r\n"...)
	}
	body = append(body, FinalChunk...)
	var d ChunkedDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		d.Reset()
		in := body
		for {
			n, _, done, err := d.Next(in)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
			if done || n == 0 {
				break
			}
		}
		if !d.Done() {
			b.Fatal("not done")
		}
	}
}

func BenchmarkAppendError(b *testing.B) {
	dst := make([]byte, 0, 512)
	id := []byte("0c3b1f0e-5c1d-4e0a-9d5e-1b2c3d4e5f60")
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendError(dst[:0], 431, string(CauseHeadersTooLarge), "request head too large", id, true)
	}
}

// trailerResponse announces trailers (a gRPC answer's head), some of them
// not to be announced to the client.
var trailerResponse = []byte(req("HTTP/1.1 200 OK", "Content-Type: application/grpc", "Connection: X-Hop",
	"Trailer: grpc-status, grpc-message, X-Hop, Content-Length", "Transfer-Encoding: chunked"))

func TestHotPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	var (
		s    HeadScanner
		r    Request
		resp Response
		d    ChunkedDecoder
		dst  = make([]byte, 0, 4096)
		fi   = ForwardInfo{ClientIP: []byte("203.0.113.7"), RequestID: []byte("id"), Via: "1.1 gozer", TrustForwarded: true, Trailers: true}
		ri   = ResponseInfo{RequestID: []byte("id"), Via: "1.1 gozer", Chunked: true, Trailers: true}
		body = []byte("5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
		reqs = [][]byte{benchRequest, []byte(req("POST /p HTTP/1.1", "Host: a", "Transfer-Encoding: chunked",
			"Connection: X-A, TE", "X-A: 1", "X-Forwarded-For: 1.1.1.1", "Via: 1.0 x", "TE: gzip;q=0.5, trailers"))}
	)
	allocs := testing.AllocsPerRun(200, func() {
		for _, h := range reqs {
			s.Reset()
			n, err := s.Scan(h, Limits{})
			if err != nil || n != len(h) {
				t.Fatal(n, err)
			}
			if err := r.Parse(h[:n]); err != nil {
				t.Fatal(err)
			}
			dst = AppendForwardRequest(dst[:0], &r, &fi)
		}
		if err := resp.Parse(benchResponse, false); err != nil {
			t.Fatal(err)
		}
		dst = AppendClientResponse(dst[:0], &resp, &ri)
		if err := resp.ParseLazy(trailerResponse, false); err != nil {
			t.Fatal(err)
		}
		dst = AppendClientResponse(dst[:0], &resp, &ri)
		d.Reset()
		for in := body; len(in) > 0; {
			n, _, done, err := d.Next(in)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				break
			}
			in = in[n:]
		}
		dst = AppendError(dst[:0], 400, string(CauseSmuggling), "", []byte("id"), true)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}

// BenchmarkProxyResponseLazy is what the proxy path does per response when no
// filter reads the response headers: scan, ParseLazy, write the client head.
func BenchmarkProxyResponseLazy(b *testing.B) {
	benchProxyResponse(b, true)
}

// BenchmarkProxyResponseParsed is the same with fasthttp's parse (Parse).
func BenchmarkProxyResponseParsed(b *testing.B) {
	benchProxyResponse(b, false)
}

func benchProxyResponse(b *testing.B, lazy bool) {
	var (
		s   HeadScanner
		r   Response
		lim Limits
		dst []byte
	)
	s.Response = true
	ri := ResponseInfo{RequestID: []byte("0123456789abcdef0123456789abcdef"), Via: "1.1 gozer"}
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		n, err := s.Scan(benchResponse, lim)
		if err != nil {
			b.Fatal(err)
		}
		if lazy {
			err = r.ParseLazy(benchResponse[:n], false)
		} else {
			err = r.Parse(benchResponse[:n], false)
		}
		if err != nil {
			b.Fatal(err)
		}
		dst = AppendClientResponse(dst[:0], &r, &ri)
	}
}
