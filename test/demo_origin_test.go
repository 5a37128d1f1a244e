package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDemoOrigin checks the origin the other tests stand on, talking to it directly:
// a failure here is a fixture bug, not a gateway bug.
func TestDemoOrigin(t *testing.T) {
	t.Parallel()
	o := startOrigin(t, "solo")
	client := newClient(t, 20*time.Second)
	get := func(t *testing.T, path string) (*http.Response, []byte, error) {
		resp, err := client.Get(o.URL(path))
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"index names the origin and lists headers", func(t *testing.T) {
			req, _ := http.NewRequest("GET", o.URL("/some/path"), nil)
			req.Header.Set("X-Shown", "yes")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			for _, want := range []string{"hello from demo-origin solo", "method: GET", "path: /some/path", "X-Shown: yes"} {
				if !strings.Contains(string(body), want) {
					t.Errorf("page lacks %q:\n%s", want, body)
				}
			}
		}},
		{"bytes with content-length", func(t *testing.T) {
			resp, err := client.Get(o.URL("/bytes?n=100000"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != 100000 {
				t.Errorf("Content-Length = %d", resp.ContentLength)
			}
			if _, err := checkPattern(resp.Body, 100000); err != nil {
				t.Error(err)
			}
		}},
		{"bytes chunked", func(t *testing.T) {
			resp, err := client.Get(o.URL("/bytes?n=100000&chunked=1"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("Transfer-Encoding = %v, want chunked", resp.TransferEncoding)
			}
			if _, err := checkPattern(resp.Body, 100000); err != nil {
				t.Error(err)
			}
		}},
		{"sink hashes the body", func(t *testing.T) {
			resp, err := client.Post(o.URL("/sink"), "application/octet-stream", &patternReader{n: 300000})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Bytes  int64  `json:"bytes"`
				SHA256 string `json:"sha256"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&got)
			if got.Bytes != 300000 || got.SHA256 != patternSHA(300000) {
				t.Errorf("sink = %+v", got)
			}
		}},
		{"slow-sink reads late, then hashes", func(t *testing.T) {
			resp, err := client.Post(o.URL("/slow-sink?delay=50ms"), "application/octet-stream", &patternReader{n: 1000})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if s := decodeSink(t, body); s.Bytes != 1000 || s.SHA256 != patternSHA(1000) {
				t.Errorf("slow-sink = %+v", s)
			}
		}},
		{"echo streams the body back", func(t *testing.T) {
			body := bytes.Repeat([]byte("echo!"), 50000)
			resp, err := client.Post(o.URL("/echo"), "text/x-test", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if !bytes.Equal(got, body) || resp.Header.Get("Content-Type") != "text/x-test" {
				t.Errorf("echo gave %d bytes, Content-Type %q", len(got), resp.Header.Get("Content-Type"))
			}
		}},
		{"status", func(t *testing.T) {
			resp, _, err := get(t, "/status?code=418")
			if err != nil || resp.StatusCode != 418 {
				t.Errorf("status: %v %v", resp, err)
			}
		}},
		{"reset gives no response", func(t *testing.T) {
			if _, _, err := get(t, "/reset"); err == nil {
				t.Error("GET /reset succeeded")
			}
		}},
		{"close-mid cuts the body", func(t *testing.T) {
			_, body, err := get(t, "/close-mid?n=10000")
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != 5000 {
				t.Errorf("got %d bytes, err %v; want 5000 and unexpected EOF", len(body), err)
			}
		}},
		{"slow-body completes", func(t *testing.T) {
			resp, err := client.Get(o.URL("/slow-body?n=10000&delay=100ms"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if _, err := checkPattern(resp.Body, 10000); err != nil {
				t.Error(err)
			}
		}},
		{"counter counts", func(t *testing.T) {
			_, a, _ := get(t, "/counter")
			_, b, _ := get(t, "/counter")
			if string(a) != "1\n" || string(b) != "2\n" {
				t.Errorf("counter gave %q then %q", a, b)
			}
		}},
		{"seen records X-Test-Id", func(t *testing.T) {
			id := uniqueID("fixture")
			if s := seen(t, o, id); s.Requests+s.Connections != 0 {
				t.Fatalf("unknown id seen: %+v", s)
			}
			req, _ := http.NewRequest("POST", o.URL("/sink"), strings.NewReader("abc"))
			req.Header.Set("X-Test-Id", id)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if s := seen(t, o, id); s.Requests != 1 || s.Complete != 1 || s.Connections != 1 {
				t.Errorf("seen = %+v, want 1 request, complete, on 1 connection", s)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}
