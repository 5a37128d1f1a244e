package exchange

import (
	"testing"

	"gozer/gateway/httpcodec"
)

// TestUpgradeEdits: what the outbound filters changed of a 101 is named,
// whether the head stayed lazy or was parsed; other headers do not count.
func TestUpgradeEdits(t *testing.T) {
	const head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Origin: 1\r\n\r\n"
	fields := []byte(head[len("HTTP/1.1 101 Switching Protocols\r\n") : len(head)-2])
	cases := []struct {
		name         string
		materialized bool
		edit         func(r *httpcodec.Response)
		want         string
	}{
		{"nothing", false, func(*httpcodec.Response) {}, ""},
		{"other headers", false, func(r *httpcodec.Response) {
			r.SetHeader("Set-Cookie", []byte("a=1"))
			r.DelHeader("X-Origin")
		}, ""},
		{"status", false, func(r *httpcodec.Response) { r.Status = 200 }, "status"},
		{"upgrade fields", false, func(r *httpcodec.Response) {
			r.DelHeader("Connection")
			r.SetHeader("Sec-WebSocket-Accept", []byte("bogus"))
			r.SetHeader("Sec-WebSocket-Protocol", []byte("chat"))
		}, "Connection,Sec-WebSocket-Accept,Sec-WebSocket-Protocol"},
		{"parsed, nothing", true, func(*httpcodec.Response) {}, ""},
		{"parsed, upgrade removed", true, func(r *httpcodec.Response) { r.DelHeader("upgrade") }, "Upgrade"},
	}
	for _, c := range cases {
		var r httpcodec.Response
		if err := r.ParseLazy([]byte(head), false); err != nil {
			t.Fatal(err)
		}
		if c.materialized {
			if err := r.Materialize(); err != nil {
				t.Fatal(err)
			}
		}
		c.edit(&r)
		if got := upgradeEdits(&r, fields); got != c.want {
			t.Errorf("%s: upgradeEdits = %q; want %q", c.name, got, c.want)
		}
	}
}
