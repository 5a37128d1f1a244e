package test

import (
	"bytes"
	"fmt"
	"testing"
)

// TestLuaFilterResponseBody: an outbound filter declaring body = true sees the whole
// response body (Content-Length and chunked from the origin) and can replace it; the
// client gets the new body with a matching Content-Length. A body over
// filters.max_body_bytes streams through untouched and the filter sees no body.
func TestLuaFilterResponseBody(t *testing.T) {
	t.Parallel()
	d := newScriptDir(t)
	d.write(t, "outbound", "10_upper.lua", luaFilter("upper", "outbound", 10, "", `
    local b = ctx.resp.body()
    if b == nil then ctx.resp.set_header("X-Saw-Body", "none"); return end
    ctx.resp.set_header("X-Saw-Body", tostring(#b))
    ctx.resp.set_body(b .. "/end")`, "body = true"))
	o := startOrigin(t, "a")
	g := luaGozer(t, d, filtersConfig{MaxBodyBytes: "64KiB", Budget: "1s"}, servers(o), route{PathPrefix: "/", Origin: "a"})

	tests := []struct {
		name    string
		path    string
		n       int
		wantSaw string
	}{
		{"content-length body", "/bytes?n=1000", 1000, "1000"},
		{"chunked body", "/bytes?n=50000&chunked=1", 50000, "50000"},
		{"body over max_body_bytes streams untouched", "/bytes?n=200000", 200000, "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, g.ProxyAddr)
			resp, body := c.roundTrip(request("GET", tc.path))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Saw-Body"); got != tc.wantSaw {
				t.Fatalf("filter saw body %q, want %q", got, tc.wantSaw)
			}
			want := make([]byte, tc.n)
			for i := range want {
				want[i] = pattern(int64(i))
			}
			if tc.wantSaw != "none" {
				want = append(want, "/end"...)
				if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(want)) {
					t.Errorf("Content-Length %q, want %d", cl, len(want))
				}
			}
			if !bytes.Equal(body, want) {
				t.Errorf("client got %d bytes, not the %d expected (replaced body: %v)", len(body), len(want), tc.wantSaw != "none")
			}
			// The connection is still usable: the framing was right.
			resp2, _ := c.roundTrip(request("GET", "/bytes?n=10"))
			if resp2.StatusCode != 200 || resp2.Header.Get("X-Saw-Body") != "10" {
				t.Errorf("next request on the connection: status %d, X-Saw-Body %q", resp2.StatusCode, resp2.Header.Get("X-Saw-Body"))
			}
		})
	}
}
