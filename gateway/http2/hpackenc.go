package http2

import (
	"bytes"
	"unsafe"

	"golang.org/x/net/http2/hpack"

	"gozer/gateway/httpcodec"
)

// headEncoder writes response header blocks in HPACK (RFC 7541) straight
// from the head's fields (httpcodec.AppendClientFields calls AppendField),
// into the connection's reused block buffer: no HTTP/1.1 text in between and
// no string per field. It keeps no dynamic table, as nginx's HTTP/2 does: a
// field is "literal without indexing", its name by static-table index where
// RFC 7541 Appendix A has it, strings Huffman-coded when that is shorter;
// :status is one byte for the seven codes of the static table. What this
// saves: x/net's hpack.Encoder takes a HeaderField of strings, so the old
// path made the HTTP/1.1 text, split it and allocated two strings per field
// (7 of the 11 allocations per stream of BenchmarkConnStreams before).
// Loop goroutine only; one per connection.
type headEncoder struct {
	lower []byte // the field's name, lowercased (RFC 9113 8.2.1)
	// resize: the next block starts with a dynamic table size update to 0
	// (RFC 7541 4.2), after the client sent SETTINGS_HEADER_TABLE_SIZE: a
	// client that lowered its table must hear that ours fits (nghttp2
	// insists on the update); 0 fits any later setting.
	resize bool
}

// begin starts a block: the dynamic table size update when one is owed.
func (e *headEncoder) begin(dst []byte) []byte {
	if e.resize {
		e.resize = false
		dst = append(dst, 0x20) // dynamic table size update: 0
	}
	return dst
}

// status starts a block with :status.
func (e *headEncoder) status(dst []byte, code int) []byte {
	dst = e.begin(dst)
	if i := staticStatus(code); i > 0 {
		return append(dst, 0x80|i) // indexed field
	}
	var digits [3]byte
	digits[0], digits[1], digits[2] = byte('0'+code/100%10), byte('0'+code/10%10), byte('0'+code%10)
	dst = append(dst, 0x08) // literal without indexing, name :status (8)
	return appendHpackString(dst, digits[:])
}

// staticStatus is the static table's index of ":status: code", 0 when absent.
func staticStatus(code int) byte {
	switch code {
	case 200:
		return 8
	case 204:
		return 9
	case 206:
		return 10
	case 304:
		return 11
	case 400:
		return 12
	case 404:
		return 13
	case 500:
		return 14
	}
	return 0
}

// AppendField implements httpcodec.FieldWriter: one field, its name
// lowercased; connection-specific fields (RFC 9113 8.2.2) are dropped.
func (e *headEncoder) AppendField(dst, name, value []byte) []byte {
	e.lower = append(e.lower[:0], name...)
	for i, ch := range e.lower {
		if ch >= 'A' && ch <= 'Z' {
			e.lower[i] = ch + 'a' - 'A'
		}
	}
	if hopByHop(e.lower) {
		return dst
	}
	if i := staticName(e.lower); i > 0 {
		// Literal without indexing, indexed name: 0000 and a 4-bit prefix.
		if i < 15 {
			dst = append(dst, byte(i))
		} else {
			dst = append(dst, 0x0f, byte(i-15)) // i <= 61: one more byte
		}
	} else {
		dst = append(dst, 0)
		dst = appendHpackString(dst, e.lower)
	}
	// A field value has no leading or trailing whitespace in HTTP/2 (RFC 9113
	// 8.2.1: a peer treats it as malformed); a filter may set one with it,
	// which HTTP/1.1 tolerates.
	return appendHpackString(dst, httpcodec.TrimOWS(value))
}

// appendHpackString appends an HPACK string literal (RFC 7541 5.2):
// Huffman-coded when that is shorter.
func appendHpackString(dst, s []byte) []byte {
	// The hpack functions take a string and keep none of it: a view of s
	// saves a copy per field.
	str := unsafe.String(unsafe.SliceData(s), len(s))
	if n := hpack.HuffmanEncodeLength(str); n < uint64(len(s)) {
		dst = appendHpackInt(dst, 0x80, n)
		return hpack.AppendHuffmanString(dst, str)
	}
	dst = appendHpackInt(dst, 0, uint64(len(s)))
	return append(dst, s...)
}

// appendHpackInt appends n with a 7-bit prefix (RFC 7541 5.1) under the
// flag bit hi.
func appendHpackInt(dst []byte, hi byte, n uint64) []byte {
	if n < 127 {
		return append(dst, hi|byte(n))
	}
	dst = append(dst, hi|127)
	n -= 127
	for n >= 128 {
		dst = append(dst, byte(n&0x7f|0x80))
		n >>= 7
	}
	return append(dst, byte(n))
}

// staticName is the index of a lowercase name in HPACK's static table
// (RFC 7541 Appendix A; the first of its entries), 0 when absent. Only the
// names a response may carry; a switch on string(name) does not allocate.
func staticName(name []byte) int {
	switch string(name) {
	case "accept-ranges":
		return 18
	case "access-control-allow-origin":
		return 20
	case "age":
		return 21
	case "allow":
		return 22
	case "cache-control":
		return 24
	case "content-disposition":
		return 25
	case "content-encoding":
		return 26
	case "content-language":
		return 27
	case "content-length":
		return 28
	case "content-location":
		return 29
	case "content-range":
		return 30
	case "content-type":
		return 31
	case "date":
		return 33
	case "etag":
		return 34
	case "expires":
		return 36
	case "last-modified":
		return 44
	case "link":
		return 45
	case "location":
		return 46
	case "proxy-authenticate":
		return 48
	case "refresh":
		return 52
	case "retry-after":
		return 53
	case "server":
		return 54
	case "set-cookie":
		return 55
	case "strict-transport-security":
		return 56
	case "vary":
		return 59
	case "via":
		return 60
	case "www-authenticate":
		return 61
	}
	return 0
}

// appendTextHead encodes an HTTP/1.1 response head's text (the push
// handshake's answer, which pushconn writes as HTTP/1.1) as a header block:
// the status line's code becomes :status.
func (e *headEncoder) appendTextHead(dst, h []byte) []byte {
	eol := bytes.IndexByte(h, '\n')
	if len(h) < 12 || eol < 0 {
		return dst
	}
	code := int(h[9]-'0')*100 + int(h[10]-'0')*10 + int(h[11]-'0')
	dst = e.status(dst, code)
	h = h[eol+1:]
	for len(h) > 0 {
		eol = bytes.IndexByte(h, '\n')
		if eol <= 1 {
			break
		}
		line := h[:eol-1]
		h = h[eol+1:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		dst = e.AppendField(dst, line[:colon], bytes.TrimSpace(line[colon+1:]))
	}
	return dst
}
