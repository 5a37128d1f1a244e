package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTrailersTE: a client that says it takes trailers (TE: trailers) has
// Gozer say so to the origin, so that an origin which sends trailers only
// then (gRPC servers) does, and they reach the client: from Go's HTTP/1.1
// client (with or without Connection: TE, other codings beside it) and its
// HTTP/2 clients (te: trailers, h2c and h2 over TLS). Gozer's TE is
// "trailers" and nothing else, with Connection: TE (RFC 9110 10.1.4); a TE
// without "trailers", no TE, and an HTTP/1.0 client (its close-delimited
// answer cannot carry trailers) send none. An HTTP/2 te other than
// "trailers" is a malformed request (RST_STREAM PROTOCOL_ERROR).
func TestTrailersTE(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	o := trailerOrigin(t)
	g := trailerGozer(t, ca, o.Listener.Addr().String())
	http1, h2c, h2 := newClient(t, 20*time.Second), h2cClient(t), h2TLSClient(t, ca)
	plain, tls := "http://"+g.ProxyAddr, "https://"+g.HTTPSAddr
	cases := []struct {
		name     string
		client   *http.Client
		base     string
		header   []string // name, value pairs
		wantTE   string   // what the origin got
		wantConn string
		trailers bool // Grpc-Status: 0 reached the client
	}{
		{"http1 trailers", http1, plain, []string{"TE", "trailers"}, "trailers", "TE", true},
		{"http1 with connection and codings", http1, plain, []string{"TE", "gzip;q=0.5, trailers", "Connection", "TE"}, "trailers", "TE", true},
		{"http1 codings only", http1, plain, []string{"TE", "gzip, deflate"}, "", "", false},
		{"http1 none", http1, plain, nil, "", "", false},
		{"h2c trailers", h2c, plain, []string{"TE", "trailers"}, "trailers", "TE", true},
		{"h2 trailers", h2, tls, []string{"TE", "trailers"}, "trailers", "TE", true},
		{"h2 none", h2, tls, nil, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.base+"/te", nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != "hello" {
				t.Fatalf("%d %s %q %v", resp.StatusCode, resp.Proto, body, err)
			}
			if got := resp.Header.Get("X-Got-TE"); got != tc.wantTE {
				t.Errorf("the origin got TE %q, want %q", got, tc.wantTE)
			}
			if got := resp.Header.Get("X-Got-Connection"); got != tc.wantConn {
				t.Errorf("the origin got Connection %q, want %q", got, tc.wantConn)
			}
			if got := resp.Trailer.Get("Grpc-Status"); (got == "0") != tc.trailers {
				t.Errorf("trailer Grpc-Status %q (trailers %v), want trailers %v", got, resp.Trailer, tc.trailers)
			}
		})
	}
	t.Run("http1.0 trailers", func(t *testing.T) {
		c := dialRaw(t, g.ProxyAddr)
		c.send("GET /te HTTP/1.0\r\nHost: x\r\nConnection: TE\r\nTE: trailers\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		all, err := io.ReadAll(c.br)
		s := strings.ToLower(string(all))
		if err != nil || !strings.HasSuffix(s, "\r\n\r\nhello") || !strings.Contains(s, "x-got-te:") || strings.Contains(s, "x-got-te: trailers") {
			t.Fatalf("HTTP/1.0 answer %q (%v): the origin must get no TE", s, err)
		}
	})
	t.Run("h2 te gzip malformed", func(t *testing.T) {
		h := dialH2(t, g.ProxyAddr)
		if err := h.request(1, "GET", "/te", true, "te", "gzip"); err != nil {
			t.Fatal(err)
		}
		if status, _ := h.waitStream(1, 5*time.Second); status != "RST:PROTOCOL_ERROR" {
			t.Fatalf("te: gzip over HTTP/2 got %q, want RST_STREAM PROTOCOL_ERROR", status)
		}
	})
}
