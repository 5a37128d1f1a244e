package push

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"

	"gozer/gateway/httpcodec"
)

// Headers looks up request header values by name (case-insensitive). Peek
// returns the value of the first header of that name, or nil when there is
// none. *fasthttp.RequestHeader satisfies it (and PeekAll below), so the core
// passes its parsed request header directly.
//
// When the value also implements PeekAll(name string) [][]byte, every
// Connection and Upgrade header is looked at and a repeated Sec-WebSocket-Key
// is refused; otherwise only the first of each.
type Headers interface {
	Peek(name string) []byte
}

type allHeaders interface {
	PeekAll(name string) [][]byte
}

// HeaderFunc adapts a lookup function to Headers.
type HeaderFunc func(name string) []byte

// Peek calls f(name).
func (f HeaderFunc) Peek(name string) []byte { return f(name) }

// HandshakeError says why a websocket upgrade request was refused and how to
// answer it: Status 400 (a malformed handshake) or 426 (a websocket version
// other than 13; the answer then carries Sec-WebSocket-Version: 13). The
// values are shared package-level values: treat them as read-only.
type HandshakeError struct {
	Status int
	Reason string // short, lowercase; safe to send to the client
}

// Error implements error: "websocket handshake: <status> <reason>".
func (e *HandshakeError) Error() string {
	return "websocket handshake: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// AppendHeaders appends the header lines the answer must carry besides the
// usual ones (each ending in CRLF): for 426, Sec-WebSocket-Version: 13 and
// Upgrade: websocket; nothing for 400.
func (e *HandshakeError) AppendHeaders(dst []byte) []byte {
	if e.Status == 426 {
		dst = append(dst, "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n"...)
	}
	return dst
}

// AppendResponse appends a complete HTTP/1.1 answer: status line, the headers
// of AppendHeaders, a text/plain body with the reason, and Connection: close.
// The core may build its own answer through the outbound filters instead,
// from Status, Reason and AppendHeaders.
func (e *HandshakeError) AppendResponse(dst []byte) []byte {
	text := "Bad Request"
	if e.Status == 426 {
		text = "Upgrade Required"
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\n"...)
	dst = e.AppendHeaders(dst)
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.Reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, e.Reason...)
	return append(dst, '\n')
}

func badHandshake(reason string) *HandshakeError {
	return &HandshakeError{Status: 400, Reason: reason}
}

// The errors CheckHandshake returns.
var (
	errMethod        = badHandshake("websocket upgrade needs method GET")
	errProto         = badHandshake("websocket upgrade needs HTTP/1.1")
	errUpgrade       = badHandshake("missing upgrade: websocket")
	errConnection    = badHandshake("connection header lacks upgrade")
	errKeyMissing    = badHandshake("missing sec-websocket-key")
	errKeyRepeated   = badHandshake("more than one sec-websocket-key")
	errKeyInvalid    = badHandshake("sec-websocket-key is not 16 bytes in base64")
	errVersionNot13  = &HandshakeError{Status: 426, Reason: "websocket version 13 required"}
	errVersionAbsent = &HandshakeError{Status: 426, Reason: "missing sec-websocket-version (13 required)"}
)

// CheckHandshake validates a parsed HTTP/1.1 request as an RFC 6455 (version
// 13) opening handshake. method and proto are the request line's method and
// version ("GET", "HTTP/1.1"). On success it returns the Sec-WebSocket-Key
// (trimmed; it aliases the header value, valid as long as the header is) to
// pass to AppendAccept. On failure the error is a *HandshakeError.
//
// The checks, in order: method GET; HTTP/1.1; an Upgrade header with the token
// "websocket" (case-insensitive); a Connection header with the token
// "upgrade"; Sec-WebSocket-Version 13 (426 otherwise, also when missing);
// exactly one Sec-WebSocket-Key of 16 base64-encoded bytes. Host is the HTTP
// codec's business (it refuses a request without one). Subprotocols and
// extensions are not negotiated: the answer names none, so a client that
// asked for permessage-deflate gets plain frames.
//
// It does not allocate.
func CheckHandshake(method, proto []byte, h Headers) (key []byte, err error) {
	if string(method) != "GET" {
		return nil, errMethod
	}
	if string(proto) != "HTTP/1.1" {
		return nil, errProto
	}
	all, multi := h.(allHeaders)
	if !headerHasToken(h, all, multi, "Upgrade", "websocket") {
		return nil, errUpgrade
	}
	if !headerHasToken(h, all, multi, "Connection", "upgrade") {
		return nil, errConnection
	}
	v := h.Peek("Sec-WebSocket-Version")
	if len(v) == 0 {
		return nil, errVersionAbsent
	}
	if !hasToken(v, "13") {
		return nil, errVersionNot13
	}
	if multi && len(all.PeekAll("Sec-WebSocket-Key")) > 1 {
		return nil, errKeyRepeated
	}
	key = httpcodec.TrimOWS(h.Peek("Sec-WebSocket-Key"))
	if len(key) == 0 {
		return nil, errKeyMissing
	}
	if !validKey(key) {
		return nil, errKeyInvalid
	}
	return key, nil
}

// validKey reports whether key is the base64 encoding of 16 bytes.
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], key)
	return err == nil && n == 16
}

func headerHasToken(h Headers, all allHeaders, multi bool, name, token string) bool {
	if !multi {
		return hasToken(h.Peek(name), token)
	}
	for _, v := range all.PeekAll(name) {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// HasToken reports whether the comma-separated header value v holds token
// (ASCII case-insensitive): "websocket" in an Upgrade value.
func HasToken(v []byte, token string) bool { return hasToken(v, token) }

// hasToken reports whether the comma-separated list v holds token (ASCII
// case-insensitive, optional whitespace around elements).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var elem []byte
		if i < 0 {
			elem, v = v, nil
		} else {
			elem, v = v[:i], v[i+1:]
		}
		if equalFoldASCII(httpcodec.TrimOWS(elem), token) {
			return true
		}
	}
	return false
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// acceptMagic is the GUID RFC 6455 §1.3 appends to the key.
const acceptMagic = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AppendAcceptKey appends the Sec-WebSocket-Accept value for key: base64 of
// the SHA-1 of key and the RFC's GUID. It does not allocate for keys of up to
// 64 bytes (a valid key has 24).
func AppendAcceptKey(dst, key []byte) []byte {
	var buf [64 + len(acceptMagic)]byte
	var p []byte
	if len(key) <= 64 {
		p = append(buf[:0], key...)
	} else {
		p = append(make([]byte, 0, len(key)+len(acceptMagic)), key...)
	}
	p = append(p, acceptMagic...)
	sum := sha1.Sum(p)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendAccept appends the 101 Switching Protocols answer that completes the
// handshake for key (as CheckHandshake returned it). It does not allocate
// when dst has room (about 130 bytes).
func AppendAccept(dst, key []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = AppendAcceptKey(dst, key)
	return append(dst, "\r\n\r\n"...)
}
