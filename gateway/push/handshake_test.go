package push

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"gozer/gateway/httpcodec"
)

const rfcKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3

// mapHeaders is a Headers with every value of each name, like an HTTP parser.
type mapHeaders http.Header

func (h mapHeaders) Peek(name string) []byte {
	if v := http.Header(h).Values(name); len(v) > 0 {
		return []byte(v[0])
	}
	return nil
}

func (h mapHeaders) PeekAll(name string) [][]byte {
	var out [][]byte
	for _, v := range http.Header(h).Values(name) {
		out = append(out, []byte(v))
	}
	return out
}

func hdrs(kv ...string) mapHeaders {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return mapHeaders(h)
}

func goodHeaders(except string, kv ...string) mapHeaders {
	base := []string{"Host", "a", "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", rfcKey, "Sec-WebSocket-Version", "13"}
	var out []string
	for i := 0; i < len(base); i += 2 {
		if !strings.EqualFold(base[i], except) {
			out = append(out, base[i], base[i+1])
		}
	}
	return hdrs(append(out, kv...)...)
}

func TestCheckHandshake(t *testing.T) {
	tests := []struct {
		name   string
		method string
		proto  string
		h      mapHeaders
		status int
		reason string
	}{
		{name: "good", h: goodHeaders("")},
		{name: "case-insensitive tokens", h: goodHeaders("upgrade", "Upgrade", "WebSocket")},
		{name: "connection list", h: goodHeaders("connection", "Connection", "keep-alive, Upgrade")},
		{name: "connection in second header", h: goodHeaders("connection", "Connection", "keep-alive", "Connection", "upgrade")},
		{name: "upgrade list", h: goodHeaders("upgrade", "Upgrade", "h2c, websocket")},
		{name: "key with whitespace", h: goodHeaders("sec-websocket-key", "Sec-WebSocket-Key", " "+rfcKey+"\t")},
		{name: "version list with 13", h: goodHeaders("sec-websocket-version", "Sec-WebSocket-Version", "8, 13")},
		{name: "post", method: "POST", h: goodHeaders(""), status: 400, reason: "GET"},
		{name: "lowercase get", method: "get", h: goodHeaders(""), status: 400, reason: "GET"},
		{name: "http/1.0", proto: "HTTP/1.0", h: goodHeaders(""), status: 400, reason: "HTTP/1.1"},
		{name: "no upgrade", h: goodHeaders("upgrade"), status: 400, reason: "upgrade"},
		{name: "upgrade other", h: goodHeaders("upgrade", "Upgrade", "h2c"), status: 400, reason: "upgrade"},
		{name: "upgrade prefix", h: goodHeaders("upgrade", "Upgrade", "websockets"), status: 400, reason: "upgrade"},
		{name: "no connection", h: goodHeaders("connection"), status: 400, reason: "connection"},
		{name: "connection close", h: goodHeaders("connection", "Connection", "close"), status: 400, reason: "connection"},
		{name: "no key", h: goodHeaders("sec-websocket-key"), status: 400, reason: "missing sec-websocket-key"},
		{name: "empty key", h: goodHeaders("sec-websocket-key", "Sec-WebSocket-Key", "  "), status: 400, reason: "missing sec-websocket-key"},
		{name: "short key", h: goodHeaders("sec-websocket-key", "Sec-WebSocket-Key", "dGhlIHNhbXBsZQ=="), status: 400, reason: "16 bytes"},
		{name: "key of 18 bytes", h: goodHeaders("sec-websocket-key", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQAA"), status: 400, reason: "16 bytes"},
		{name: "key not base64", h: goodHeaders("sec-websocket-key", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ!=="), status: 400, reason: "16 bytes"},
		{name: "two keys", h: goodHeaders("", "Sec-WebSocket-Key", rfcKey), status: 400, reason: "more than one"},
		{name: "no version", h: goodHeaders("sec-websocket-version"), status: 426, reason: "13"},
		{name: "version 8", h: goodHeaders("sec-websocket-version", "Sec-WebSocket-Version", "8"), status: 426, reason: "13"},
		{name: "version 130", h: goodHeaders("sec-websocket-version", "Sec-WebSocket-Version", "130"), status: 426},
		{name: "version checked before key", h: goodHeaders("sec-websocket-version", "Sec-WebSocket-Key", "x", "Sec-WebSocket-Version", "7"), status: 426},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, proto := "GET", "HTTP/1.1"
			if tc.method != "" {
				method = tc.method
			}
			if tc.proto != "" {
				proto = tc.proto
			}
			key, err := CheckHandshake([]byte(method), []byte(proto), tc.h)
			if tc.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if string(key) != rfcKey {
					t.Fatalf("key %q", key)
				}
				return
			}
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not a *HandshakeError", err)
			}
			if he.Status != tc.status || !strings.Contains(he.Reason, tc.reason) {
				t.Fatalf("got %d %q, want %d containing %q", he.Status, he.Reason, tc.status, tc.reason)
			}
			resp := he.AppendResponse(nil)
			r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(resp)), nil)
			if err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, resp)
			}
			if r.StatusCode != tc.status || (tc.status == 426) != (r.Header.Get("Sec-WebSocket-Version") == "13") || !r.Close {
				t.Fatalf("answer: %d version %q close %v", r.StatusCode, r.Header.Get("Sec-WebSocket-Version"), r.Close)
			}
		})
	}
}

func TestCheckHandshakeHeaderFunc(t *testing.T) {
	h := goodHeaders("")
	key, err := CheckHandshake([]byte("GET"), []byte("HTTP/1.1"), HeaderFunc(h.Peek))
	if err != nil || string(key) != rfcKey {
		t.Fatalf("%q %v", key, err)
	}
}

// TestCheckHandshakeHTTPCodec feeds the request the core's own HTTP codec
// parsed (a fasthttp RequestHeader) to CheckHandshake.
func TestCheckHandshakeHTTPCodec(t *testing.T) {
	tests := []struct {
		name   string
		head   string
		status int
	}{
		{"good", "GET /push/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 0},
		{"split connection headers", "GET /push/ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 0},
		{"lowercase names", "GET /push/ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: " + rfcKey + "\r\nsec-websocket-version: 13\r\n\r\n", 0},
		{"http/1.0", "GET /push/ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"two keys", "GET /push/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"version 8", "GET /push/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 8\r\n\r\n", 426},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req httpcodec.Request
			if err := req.Parse([]byte(tc.head)); err != nil {
				t.Fatal(err)
			}
			key, err := CheckHandshake(req.Header.Method(), req.Header.Protocol(), &req.Header)
			var he *HandshakeError
			switch {
			case tc.status == 0 && (err != nil || string(key) != rfcKey):
				t.Fatalf("key %q err %v", key, err)
			case tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status):
				t.Fatalf("err %v, want status %d", err, tc.status)
			}
		})
	}
}

func TestAppendAccept(t *testing.T) {
	got := string(AppendAccept(nil, []byte(rfcKey)))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	long := bytes.Repeat([]byte{'k'}, 100) // not a valid key, but must not break
	if len(AppendAcceptKey(nil, long)) != 28 {
		t.Fatal("accept of a long key is not 28 bytes")
	}
}

func TestHandshakeNoAllocs(t *testing.T) {
	var req httpcodec.Request
	head := "GET /push/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if err := req.Parse([]byte(head)); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 256)
	a := testing.AllocsPerRun(100, func() {
		key, err := CheckHandshake(req.Header.Method(), req.Header.Protocol(), &req.Header)
		if err != nil {
			t.Fatal(err)
		}
		dst = AppendAccept(dst[:0], key)
	})
	if a != 0 {
		t.Fatalf("handshake check and accept allocate %.1f times", a)
	}
}
